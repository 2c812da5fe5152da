"""Ray clusters: reaching Ray, the head `aigentflow cluster up` starts, job submission, metrics."""

"""Starting runs on Ray: the one entry point of `aigentflow run`, `resume`, `demo` and `jobs/run.py`.

``aigentflow.run.runner`` plans and records runs (the store only); this package adds Ray: it connects,
hands the run to its node's run host (``actors/run_host.py``) and follows it (``driver.py``). It sits
above ``actors/``; the run core below it never imports either.
"""

"""`aigentflow ui`: the project's runs, traces, health dashboards and findings in a local web app."""

"""Performance across runs: the run history (SQLite), baselines and regressions, the advisor,
the dashboard, sweep summaries and the CI gate. Built on the observer hooks
(``videodub/hookspecs.py``): the history writer is a plugin like any other
(``observer.py``). See docs/monitoring.md."""

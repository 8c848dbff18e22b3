"""Several modules together: stages, the runner, providers against the loopback server,
and the documentation's examples run as jobs, all in this process."""

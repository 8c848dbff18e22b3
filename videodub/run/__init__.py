"""Running a job: the runner wires the stages; each module here does one of its jobs
(stage loops, streams, cache policy, workers, stats, display, outputs, report)."""

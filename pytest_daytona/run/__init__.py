"""The run across processes: this process's `SandboxSession` and how it starts, the run
directory with its locks and lease records (`coordination`), the shared session sandbox,
the run's end, signals, the figures for the summary and the hook calls of the lease code."""

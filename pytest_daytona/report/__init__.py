"""What the run reports: failure diagnostics, the end-of-run summary, the test outcomes the
hooks get, the debugger pause and ``missing_key = skip``."""

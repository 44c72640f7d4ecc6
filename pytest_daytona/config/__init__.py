"""Settings: the option table (`options`), the validated model (`settings`) and how a test's
settings are resolved, marker > CLI > env > ini > default (`resolve`)."""

"""Scripts the agent runs as programs inside the sandbox (never imported by the agent)."""

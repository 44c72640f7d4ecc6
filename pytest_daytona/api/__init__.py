"""Calls to the Daytona API: one SDK client per process (`backend`), deadlines, retries and the
circuit breaker every call goes through (`calls`), and their async forms."""

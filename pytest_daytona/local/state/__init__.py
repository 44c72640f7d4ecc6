"""The control plane's durable state: sandbox records and their store, the snapshot and
volume tables, and Daytona's rules for which operation may start from which state."""

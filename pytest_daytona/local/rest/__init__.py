"""The Daytona REST API of the embedded server: sandboxes, listing, operations, metrics,
snapshots and volumes, preview links."""

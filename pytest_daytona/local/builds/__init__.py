"""Images built for sandboxes and snapshots: pulled, or built from a declarative ``Image``
(its Dockerfile parsed, steps run in a sandbox of the base image), with logs to follow."""

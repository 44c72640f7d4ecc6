"""The lease lifecycle of one sandbox: acquire, resume and release (`lease`), names whose create
was abandoned (`strays`), reuse across runs, keep-on-failure, the prewarm pool and deletes in
the background."""

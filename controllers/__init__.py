"""Controller-manager loops and the scheduler (see docs/architecture.md). Empty until the
controllers issue lands."""

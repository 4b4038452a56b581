"""The pod garbage collector: orphaned, unscheduled-terminating and excess terminated pods."""

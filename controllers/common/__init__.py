"""Helpers shared by the workload controllers' pure reconcile functions.

Everything here is free of I/O: objects are plain JSON dicts as the API serves them, time
is an aware `datetime` handed in by the caller, and results are data (`actions.py`). The
client runtime (informers, work queue) executes what the reconcilers return. Modules:
`actions` (the vocabulary between reconcilers and runtime), `objects` (dict accessors,
timestamps), `labels` (selector matching), `ownership` (controllerRef, adopt/release),
`pods` (readiness, availability, deletion order), `hashing` (pod-template-hash),
`conditions` (status conditions) and `expectations` (the replica-count bookkeeping that
keeps a controller from acting twice on the same change).
"""

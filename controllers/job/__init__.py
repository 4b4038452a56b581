"""The Job controller and the ttl-after-finished controller (pkg/controller/job, 1.32).

Pure decision code takes objects from the caches and a time and returns plans:
`sync` (one syncJob: counting, the finished condition, manageJob), `tracking` (the
tracking finalizer, uncountedTerminatedPods, terminal conditions), `conditions`,
`jobpods` (what the controller reads from and writes into pods), `backoff` (pod failure
backoff), `failure` (podFailurePolicy), `perindex` (backoffLimitPerIndex),
`successpolicy`, `indexes` (completedIndexes strings) and `plan` (the data they share).
`controller.py` feeds it from informers and makes the API calls; `ttl.py` deletes
finished Jobs after spec.ttlSecondsAfterFinished.
"""

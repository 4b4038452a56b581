"""The Job controller and the ttl-after-finished controller (pkg/controller/job, 1.32).

Pure decision code (`indexes`, `failure`, `backoff`, `jobpods`, `sync`, `tracking`) takes
objects from the caches and a time, and returns plans; `controller.py` feeds it from
informers and makes the API calls; `ttl.py` deletes finished Jobs after
spec.ttlSecondsAfterFinished.
"""

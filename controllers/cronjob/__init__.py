"""The CronJob controller (pkg/controller/cronjob, the v2 controller of Kubernetes 1.32).

`schedule.py` reads spec.schedule / spec.timeZone and finds the scheduled times with
croniter; `sync.py` decides one sync as data; `controller.py` runs it from informers.
"""

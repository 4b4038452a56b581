"""The Endpoints controller (pkg/controller/endpoint): the core/v1 Endpoints named like each Service.

    subsets.py     RepackSubsets and the 1000-address truncation
    reconcile.py   pure: service + pods + current Endpoints -> the Endpoints to write
    controller.py  informers, work queue, writes
"""

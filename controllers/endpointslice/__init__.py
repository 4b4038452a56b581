"""The EndpointSlice controller (pkg/controller/endpointslice): Services' pods as EndpointSlices.

    podendpoints.py  what both endpoint controllers ask of a pod: is it in, its IP, its ports
    tracking.py      service <-> pod event routing, the last-change trigger time
    reconcile.py     pure: service + pods + existing slices -> slices to create/update/delete
    controller.py    informers, work queue, executing the plan
"""

"""The client runtime every component shares: the only way to talk to the API server.

Layers, lowest first (a module imports only from layers below it):

    clock, errors, resources, labels      plain building blocks
    clientconfig, streaming, rest         ApiClient: REST verbs, watch streams
    store, informer                       caches kept by list-then-watch, listers
    workqueue, controller                 keys -> reconcile(key), with backoff
    leaderelection, events                Leases and Events, on top of ApiClient

Typical controller wiring:

    client = ApiClient.from_kubeconfig(path, field_manager="kube-controller-manager")
    factory = SharedInformerFactory(client)
    pods = factory.informer(PODS)
    queue: WorkQueue[str] = WorkQueue("replicaset")
    factory.informer(REPLICASETS).add_event_handler(enqueue_object(queue))
    pods.add_event_handler(enqueue_owner(queue, REPLICASETS))
    factory.start()
    await Controller("replicaset", queue, reconcile, workers=5, wait_for=factory.informers()).run()
"""

from minikube_py.client.clock import Clock, FakeClock, RealClock, settle
from minikube_py.client.component import client_for, run_until_signalled, setup_process
from minikube_py.client.controller import (
    Controller,
    Reconcile,
    Result,
    TerminalError,
    enqueue_mapped,
    enqueue_object,
    enqueue_owner,
    owner_keys,
)
from minikube_py.client.errors import ApiError, is_already_exists, is_conflict, is_gone, is_not_found
from minikube_py.client.events import NORMAL, WARNING, EventRecorder, object_reference
from minikube_py.client.informer import EventHandler, Informer, SharedInformerFactory
from minikube_py.client.labels import Selector, from_label_selector
from minikube_py.client.labels import parse as parse_selector
from minikube_py.client.leaderelection import LeaderElector, micro_time
from minikube_py.client.resources import (
    CONFIGMAPS,
    CONTROLLERREVISIONS,
    CRONJOBS,
    CUSTOMRESOURCEDEFINITIONS,
    DAEMONSETS,
    DEPLOYMENTS,
    ENDPOINTS,
    ENDPOINTSLICES,
    EVENTS,
    HORIZONTALPODAUTOSCALERS,
    INGRESSES,
    JOBS,
    LEASES,
    NAMESPACES,
    NODES,
    PERSISTENTVOLUMECLAIMS,
    PERSISTENTVOLUMES,
    PODDISRUPTIONBUDGETS,
    PODS,
    PRIORITYCLASSES,
    REPLICASETS,
    SECRETS,
    SERVICEACCOUNTS,
    SERVICES,
    STATEFULSETS,
    STORAGECLASSES,
    Resource,
    for_kind,
)
from minikube_py.client.rest import ApiClient
from minikube_py.client.store import (
    NAMESPACE_INDEX,
    OWNER_UID_INDEX,
    DeletedFinalStateUnknown,
    Lister,
    Store,
    deep_copy,
    key_of,
    owner_uid_index,
    split_key,
)
from minikube_py.client.workqueue import ItemExponentialFailureRateLimiter, RateLimiter, ShutDown, WorkQueue

__all__ = [
    "client_for",
    "run_until_signalled",
    "setup_process",
    "ApiClient", "ApiError", "Clock", "Controller", "DeletedFinalStateUnknown", "EventHandler", "EventRecorder",
    "FakeClock", "Informer", "ItemExponentialFailureRateLimiter", "LeaderElector", "Lister", "NORMAL",
    "NAMESPACE_INDEX", "OWNER_UID_INDEX", "RateLimiter", "RealClock", "Reconcile", "Resource", "Result",
    "Selector", "SharedInformerFactory", "ShutDown", "Store", "TerminalError", "WARNING", "WorkQueue",
    "deep_copy", "enqueue_mapped", "enqueue_object", "enqueue_owner", "for_kind", "from_label_selector",
    "is_already_exists", "is_conflict", "is_gone", "is_not_found", "key_of", "micro_time", "object_reference",
    "owner_keys", "owner_uid_index", "parse_selector", "settle", "split_key",
    "CONFIGMAPS", "CONTROLLERREVISIONS", "CRONJOBS", "CUSTOMRESOURCEDEFINITIONS", "DAEMONSETS", "DEPLOYMENTS",
    "ENDPOINTS", "ENDPOINTSLICES", "EVENTS", "HORIZONTALPODAUTOSCALERS", "INGRESSES", "JOBS", "LEASES",
    "NAMESPACES", "NODES", "PERSISTENTVOLUMECLAIMS", "PERSISTENTVOLUMES", "PODDISRUPTIONBUDGETS", "PODS",
    "PRIORITYCLASSES", "REPLICASETS", "SECRETS", "SERVICEACCOUNTS", "SERVICES", "STATEFULSETS", "STORAGECLASSES",
]

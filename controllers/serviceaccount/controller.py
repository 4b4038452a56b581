"""The ServiceAccount controller (pkg/controller/serviceaccount) and the root CA publisher
(pkg/controller/certificates/rootcacertpublisher), keyed by namespace.

Every active namespace gets a ServiceAccount `default`; deleting it brings it back.
Terminating namespaces are left alone (the API server would refuse the create anyway).

When the controller-manager's connection to the API server trusts a cluster CA, every
active namespace also gets the ConfigMap `kube-root-ca.crt` with `ca.crt` holding that
bundle and Kubernetes' `kubernetes.io/description` annotation, restored if edited or
deleted. A cluster served over plain HTTP (no `certificate-authority` in the
controller-manager's kubeconfig, as minikube_py today) has no CA to publish, so no such
ConfigMap is written.
"""

from __future__ import annotations

import ssl
from typing import Any

from minikube_py.client import (
    CONFIGMAPS,
    NAMESPACES,
    SERVICEACCOUNTS,
    ApiClient,
    ApiError,
    Clock,
    Controller,
    EventRecorder,
    RealClock,
    Result,
    SharedInformerFactory,
    WorkQueue,
    enqueue_mapped,
    enqueue_object,
)

Obj = dict[str, Any]
DEFAULT_SERVICE_ACCOUNTS = ("default",)
ROOT_CA_CONFIGMAP = "kube-root-ca.crt"
DESCRIPTION_ANNOTATION = "kubernetes.io/description"
DESCRIPTION = ("Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints "
               "such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across "
               "distributions of Kubernetes clusters.")


def cluster_ca_bundle(client: ApiClient) -> str | None:
    """The PEM bundle the client verifies the API server with, if it has one."""
    context = getattr(client, "_ssl", None)  # set only from a kubeconfig with TLS settings
    if not isinstance(context, ssl.SSLContext) or context.verify_mode == ssl.CERT_NONE:
        return None
    certs = context.get_ca_certs(binary_form=True)
    return "".join(ssl.DER_cert_to_PEM_cert(der) for der in certs) or None


def is_active(ns: Obj | None) -> bool:
    return bool(ns) and not (ns.get("metadata") or {}).get("deletionTimestamp") \
        and (ns.get("status") or {}).get("phase") != "Terminating"


class ServiceAccountController:
    """Ensures `default` ServiceAccounts (and `kube-root-ca.crt`, given a CA) per namespace."""

    def __init__(self, client: ApiClient, informers: SharedInformerFactory, recorder: EventRecorder, *,
                 workers: int = 3, clock: Clock | None = None, root_ca: str | None = None) -> None:
        self.client = client
        self.clock = clock or RealClock()
        self.root_ca = root_ca if root_ca is not None else cluster_ca_bundle(client)
        self.namespaces = informers.informer(NAMESPACES)
        self.service_accounts = informers.informer(SERVICEACCOUNTS)
        self.queue: WorkQueue[str] = WorkQueue("serviceaccount", clock=self.clock)
        self.namespaces.add_event_handler(enqueue_object(self.queue))
        by_namespace = enqueue_mapped(self.queue, lambda obj: [(obj.get("metadata") or {}).get("namespace", "")])
        self.service_accounts.add_event_handler(by_namespace)
        wait_for = [self.namespaces, self.service_accounts]
        if self.root_ca:
            self.configmaps = informers.informer(CONFIGMAPS)
            self.configmaps.add_event_handler(enqueue_mapped(self.queue, lambda obj: [
                (obj.get("metadata") or {}).get("namespace", "")]
                if (obj.get("metadata") or {}).get("name") == ROOT_CA_CONFIGMAP else []))
            wait_for.append(self.configmaps)
        self.controller = Controller("serviceaccount", self.queue, self.reconcile, workers=workers,
                                     wait_for=wait_for)

    async def run(self) -> None:
        await self.controller.run()

    async def reconcile(self, namespace: str) -> Result | None:
        if not is_active(self.namespaces.lister.get(namespace)):
            return None
        for name in DEFAULT_SERVICE_ACCOUNTS:
            if self.service_accounts.lister.get(name, namespace) is None:
                await self._create(SERVICEACCOUNTS, namespace, {
                    "apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": namespace}})
        if self.root_ca:
            await self._sync_root_ca(namespace)
        return None

    async def _create(self, resource: Any, namespace: str, obj: Obj) -> None:
        try:
            await self.client.create(resource, obj, namespace)
        except ApiError as exc:
            # AlreadyExists: the cache lags; Forbidden: the namespace started terminating.
            if not (exc.is_already_exists() or exc.code == 403 or exc.is_not_found()):
                raise

    async def _sync_root_ca(self, namespace: str) -> None:
        data = {"ca.crt": self.root_ca}
        current = self.configmaps.lister.get(ROOT_CA_CONFIGMAP, namespace)
        if current is None:
            await self._create(CONFIGMAPS, namespace, {
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": ROOT_CA_CONFIGMAP, "namespace": namespace,
                             "annotations": {DESCRIPTION_ANNOTATION: DESCRIPTION}}, "data": data})
            return
        annotations = (current.get("metadata") or {}).get("annotations") or {}
        if current.get("data") == data and annotations.get(DESCRIPTION_ANNOTATION) == DESCRIPTION:
            return
        body = {**current, "data": data,
                "metadata": {**current["metadata"], "annotations": {**annotations, DESCRIPTION_ANNOTATION: DESCRIPTION}}}
        await self.client.update(CONFIGMAPS, body)

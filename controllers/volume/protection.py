"""The PVC and PV protection controllers (pkg/controller/volume/pvcprotection, pvprotection).

The API server's StorageObjectInUseProtection admission puts `kubernetes.io/pvc-protection`
on every new claim and `kubernetes.io/pv-protection` on every new volume. These loops
keep that promise:

- a claim that is being deleted keeps its finalizer while a scheduled pod that has not
  finished (phase neither Succeeded nor Failed) uses it, through
  `persistentVolumeClaim.claimName` or a generic ephemeral volume (`<pod>-<volume>`);
  when the informer cache says no pod does, a live pod list of the namespace confirms it
  before the finalizer goes (a pod created a moment ago may not be cached yet);
- a volume that is being deleted keeps its finalizer while its phase is Bound;
- a claim or volume without its finalizer (created before the admission plugin, or
  edited) gets it back, unless it is being deleted.

The finalizer is removed with a JSON patch that tests the resourceVersion, so a
concurrent change makes the patch fail (409/422) and the key is tried again.
"""

from __future__ import annotations

from typing import Any

from minikube_py.client import (
    PERSISTENTVOLUMECLAIMS,
    PERSISTENTVOLUMES,
    PODS,
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
    split_key,
)

Obj = dict[str, Any]
PVC_PROTECTION_FINALIZER = "kubernetes.io/pvc-protection"
PV_PROTECTION_FINALIZER = "kubernetes.io/pv-protection"
TERMINAL_PHASES = ("Succeeded", "Failed")


def _meta(obj: Obj) -> Obj:
    return obj.get("metadata") or {}


def claims_of(pod: Obj) -> list[str]:
    """Names of the claims a pod's volumes use (generic ephemeral ones: `<pod>-<volume>`)."""
    names = []
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        claim = volume.get("persistentVolumeClaim")
        if isinstance(claim, dict) and claim.get("claimName"):
            names.append(claim["claimName"])
        elif isinstance(volume.get("ephemeral"), dict):
            names.append(f"{_meta(pod).get('name')}-{volume.get('name')}")
    return names


def pod_uses_claim(pod: Obj, claim: str) -> bool:
    """podUsesPVC: only a scheduled pod counts (the kubelet refuses to start a pod whose
    claim is being deleted), and one that finished no longer does."""
    if not (pod.get("spec") or {}).get("nodeName"):
        return False
    if (pod.get("status") or {}).get("phase") in TERMINAL_PHASES:
        return False
    return claim in claims_of(pod)


def finalizer_patch(obj: Obj, finalizer: str, *, add: bool) -> list[Obj]:
    """A JSON patch adding or removing `finalizer`, guarded by the resourceVersion."""
    meta = _meta(obj)
    current = list(meta.get("finalizers") or [])
    wanted = [*current, finalizer] if add else [f for f in current if f != finalizer]
    return [{"op": "test", "path": "/metadata/resourceVersion", "value": meta.get("resourceVersion")},
            {"op": "add", "path": "/metadata/finalizers", "value": wanted}]


class _Protection:
    """What both controllers share: ensure the finalizer, or remove it once unused."""

    resource: Any
    finalizer: str

    def __init__(self, client: ApiClient) -> None:
        self.client = client

    async def _patch(self, obj: Obj, *, add: bool) -> None:
        meta = _meta(obj)
        try:
            await self.client.patch(self.resource, meta["name"], finalizer_patch(obj, self.finalizer, add=add),
                                    meta.get("namespace"), patch_type="json")
        except ApiError as exc:
            if exc.is_not_found():
                return
            raise  # a stale resourceVersion (test op failed): retried with back-off

    async def sync(self, obj: Obj | None) -> None:
        if obj is None:
            return
        meta = _meta(obj)
        has = self.finalizer in (meta.get("finalizers") or [])
        if not meta.get("deletionTimestamp"):
            if not has:
                await self._patch(obj, add=True)
            return
        if has and not await self.in_use(obj):
            await self._patch(obj, add=False)

    async def in_use(self, obj: Obj) -> bool:
        raise NotImplementedError


class PVCProtectionController(_Protection):
    """Holds a claim that is being deleted until no pod uses it."""

    resource = PERSISTENTVOLUMECLAIMS
    finalizer = PVC_PROTECTION_FINALIZER

    def __init__(self, client: ApiClient, informers: SharedInformerFactory, recorder: EventRecorder, *,
                 workers: int = 5, clock: Clock | None = None) -> None:
        super().__init__(client)
        self.clock = clock or RealClock()
        self.claims = informers.informer(PERSISTENTVOLUMECLAIMS)
        self.pods = informers.informer(PODS)
        self.queue: WorkQueue[str] = WorkQueue("pvcprotection", clock=self.clock)
        self.claims.add_event_handler(enqueue_object(self.queue))
        # A pod that goes away, finishes or changes may release its claims.
        self.pods.add_event_handler(enqueue_mapped(self.queue, lambda pod: [
            f"{_meta(pod).get('namespace')}/{name}" for name in claims_of(pod)]))
        self.controller = Controller("pvcprotection", self.queue, self.reconcile, workers=workers,
                                     wait_for=[self.claims, self.pods])

    async def run(self) -> None:
        await self.controller.run()

    async def reconcile(self, key: str) -> Result | None:
        namespace, name = split_key(key)
        await self.sync(self.claims.lister.get(name, namespace))
        return None

    async def in_use(self, obj: Obj) -> bool:
        namespace, name = _meta(obj).get("namespace"), _meta(obj).get("name")
        if any(pod_uses_claim(pod, name) for pod in self.pods.lister.list(namespace)):
            return True
        # The cache may lag behind a pod created just now: ask the API server.
        live = await self.client.list(PODS, namespace)
        return any(pod_uses_claim(pod, name) for pod in live.get("items") or [])


class PVProtectionController(_Protection):
    """Holds a volume that is being deleted while it is Bound."""

    resource = PERSISTENTVOLUMES
    finalizer = PV_PROTECTION_FINALIZER

    def __init__(self, client: ApiClient, informers: SharedInformerFactory, recorder: EventRecorder, *,
                 workers: int = 5, clock: Clock | None = None) -> None:
        super().__init__(client)
        self.clock = clock or RealClock()
        self.volumes = informers.informer(PERSISTENTVOLUMES)
        self.queue: WorkQueue[str] = WorkQueue("pvprotection", clock=self.clock)
        self.volumes.add_event_handler(enqueue_object(self.queue))
        self.controller = Controller("pvprotection", self.queue, self.reconcile, workers=workers,
                                     wait_for=[self.volumes])

    async def run(self) -> None:
        await self.controller.run()

    async def reconcile(self, key: str) -> Result | None:
        await self.sync(self.volumes.lister.get(split_key(key)[1]))
        return None

    async def in_use(self, obj: Obj) -> bool:
        return (obj.get("status") or {}).get("phase") == "Bound"

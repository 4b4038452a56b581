"""StatefulPodControl: the API calls one StatefulSet sync makes for its pods and claims.

Every call records the Event Kubernetes records, with its exact wording:
  SuccessfulCreate  "create Pod web-0 in StatefulSet web successful"
  SuccessfulCreate  "create Claim www-web-0 Pod web-0 in StatefulSet web success"
  SuccessfulDelete  "delete Pod web-2 in StatefulSet web successful"
  SuccessfulUpdate  "update Pod web-1 in StatefulSet web successful"
  Failed<Verb>      "<verb> Pod web-0 in StatefulSet web failed error: <error>"
  FailedCreate      "create Claim www-web-0 for Pod web-0 in StatefulSet web failed error: <error>"
Claims are read from the PVC informer's cache (as Kubernetes' claim lister), so a claim
created a moment ago may be created again and answered AlreadyExists: that aborts this
sync without an Event, and the retry sees the claim.
"""

from __future__ import annotations

import copy
from typing import Any, Protocol

from controllers.common import objects
from controllers.common.executor import error_text
from controllers.statefulset import identity, retention
from minikube_py.client import NORMAL, PERSISTENTVOLUMECLAIMS, PODS, WARNING, ApiClient, ApiError, Lister

Obj = dict[str, Any]
CONFLICT_RETRIES = 5  # client-go retry.DefaultBackoff steps


class Recorder(Protocol):
    def event(self, obj: Obj, event_type: str, reason: str, message: str) -> Any: ...


class AggregateError(Exception):
    """utilerrors.Aggregate: one message, or `[a, b]` for several."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        super().__init__(errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]")


class StatefulPodControl:
    """Creates, updates and deletes a StatefulSet's pods and claims (see the module docstring)."""

    def __init__(self, client: ApiClient, claims: Lister, recorder: Recorder) -> None:
        self.client = client
        self.claims = claims
        self.recorder = recorder

    # -- events -------------------------------------------------------------------------

    def _pod_event(self, verb: str, sts: Obj, pod: Obj, error: BaseException | None) -> None:
        name, set_name = objects.name(pod), objects.name(sts)
        if error is None:
            self.recorder.event(sts, NORMAL, f"Successful{verb.title()}",
                                f"{verb} Pod {name} in StatefulSet {set_name} successful")
        else:
            self.recorder.event(sts, WARNING, f"Failed{verb.title()}",
                                f"{verb} Pod {name} in StatefulSet {set_name} failed error: {error_text(error)}")

    def _claim_event(self, verb: str, sts: Obj, pod: Obj, claim: Obj, error: BaseException | None) -> None:
        names = (objects.name(claim), objects.name(pod), objects.name(sts))
        if error is None:
            self.recorder.event(sts, NORMAL, f"Successful{verb.title()}",
                                "{} Claim {} Pod {} in StatefulSet {} success".format(verb, *names))
        else:
            self.recorder.event(sts, WARNING, f"Failed{verb.title()}",
                                "{} Claim {} for Pod {} in StatefulSet {} failed error: {}".format(
                                    verb, *names, error_text(error)))

    # -- pods ---------------------------------------------------------------------------

    async def create_pod(self, sts: Obj, pod: Obj) -> None:
        """CreateStatefulPod: claims first, then the pod, then the claims' owner references."""
        try:
            await self.create_claims(sts, pod)
        except Exception as exc:
            self._pod_event("create", sts, pod, exc)
            raise
        try:
            created = await self.client.create(PODS, pod, objects.namespace(sts))
        except ApiError as exc:
            if exc.is_already_exists():
                raise
            self._pod_event("create", sts, pod, exc)
            raise
        try:
            await self.update_claims_for_policy(sts, created)
        except Exception as exc:
            self._pod_event("update", sts, created, exc)
            raise
        self._pod_event("create", sts, pod, None)

    async def delete_pod(self, sts: Obj, pod: Obj) -> None:
        """DeleteStatefulPod (the Event is recorded for any outcome, 404 included)."""
        try:
            await self.client.delete(PODS, objects.name(pod), objects.namespace(pod))
        except ApiError as exc:
            self._pod_event("delete", sts, pod, exc)
            raise
        self._pod_event("delete", sts, pod, None)

    async def update_pod(self, sts: Obj, pod: Obj) -> None:
        """UpdateStatefulPod: restore identity, storage and claim references; retry conflicts."""
        attempted = False
        pod = copy.deepcopy(pod)
        error: BaseException | None = None
        for _ in range(CONFLICT_RETRIES):
            try:
                if not await self._make_consistent(sts, pod):
                    return
            except Exception as exc:
                self._pod_event("update", sts, pod, exc)
                raise
            attempted = True
            try:
                await self.client.update(PODS, pod, objects.namespace(pod))
                error = None
                break
            except ApiError as exc:
                error = exc
                if not exc.is_conflict():
                    break
                pod = await self.client.get(PODS, objects.name(pod), objects.namespace(pod))
        if attempted:
            self._pod_event("update", sts, pod, error)
        if error is not None:
            raise error

    async def _make_consistent(self, sts: Obj, pod: Obj) -> bool:
        """Fix `pod` in place; True when it changed and must be written."""
        dirty = False
        if not identity.identity_matches(sts, pod):
            identity.update_identity(sts, pod)
            dirty = True
        if not identity.storage_matches(sts, pod):
            identity.update_storage(sts, pod)
            dirty = True
            await self.create_claims(sts, pod)
        if not self.claims_match_policy(sts, pod):
            await self.update_claims_for_policy(sts, pod)
            dirty = True
        return dirty

    # -- claims -------------------------------------------------------------------------

    def _cached_claims(self, sts: Obj, pod: Obj) -> list[tuple[Obj, Obj | None]]:
        return [(claim, self.claims.get(objects.name(claim), objects.namespace(claim)))
                for claim in identity.claims_for(sts, identity.ordinal_of(pod))]

    async def create_claims(self, sts: Obj, pod: Obj) -> None:
        """createPersistentVolumeClaims: create the pod's missing claims; errors aggregate."""
        errors: list[str] = []
        for claim, cached in self._cached_claims(sts, pod):
            if cached is not None:
                if objects.being_deleted(cached):
                    errors.append(f"pvc {objects.name(claim)} is being deleted")
                continue
            try:
                await self.client.create(PERSISTENTVOLUMECLAIMS, claim, objects.namespace(claim))
            except ApiError as exc:
                errors.append(f"failed to create PVC {objects.name(claim)}: {error_text(exc)}")
                if not exc.is_already_exists():
                    self._claim_event("create", sts, pod, claim, exc)
                continue
            self._claim_event("create", sts, pod, claim, None)
        if errors:
            raise AggregateError(errors)

    async def create_missing_claims(self, sts: Obj, pod: Obj) -> None:
        """createMissingPersistentVolumeClaims: for a Pending pod whose claims went missing."""
        await self.create_claims(sts, pod)
        try:
            await self.update_claims_for_policy(sts, pod)
        except Exception as exc:
            self._pod_event("update", sts, pod, exc)
            raise

    def claims_match_policy(self, sts: Obj, pod: Obj) -> bool:
        """ClaimsMatchRetentionPolicy (claims not in the cache are skipped)."""
        return all(cached is None or retention.claim_matches_policy(cached, sts, pod)
                   for _, cached in self._cached_claims(sts, pod))

    async def update_claims_for_policy(self, sts: Obj, pod: Obj) -> None:
        """UpdatePodClaimForRetentionPolicy: fix the owner references of the pod's claims."""
        for claim, cached in self._cached_claims(sts, pod):
            if cached is None:
                continue
            wanted = retention.updated_claim(cached, sts, pod)
            if wanted is None:
                continue
            try:
                await self.client.update(PERSISTENTVOLUMECLAIMS, wanted, objects.namespace(wanted))
            except ApiError as exc:
                raise AggregateError([f"could not update claim {objects.name(claim)} for delete policy ownerRefs: "
                                      f"{error_text(exc)}"]) from exc

    def pod_claim_is_stale(self, sts: Obj, pod: Obj) -> bool:
        """PodClaimIsStale: a claim still owned by an earlier pod of this name (whenScaled: Delete)
        is about to be garbage collected, so the new pod must wait for it to go."""
        if retention.policy(sts)[1] == retention.RETAIN:
            return False
        return any(cached is not None and retention.has_stale_owner_ref(cached, pod)
                   for _, cached in self._cached_claims(sts, pod))

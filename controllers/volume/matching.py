"""Which PersistentVolume a claim may bind to (pkg/controller/volume/persistentvolume/index.go,
component-helpers/storage/volume), as pure functions over API objects.

`find_best_match(claim, volumes, delay_binding)` is the PV controller's
findBestMatchForClaim:

- volumes are grouped by their access-mode set; only sets that contain every mode the
  claim asks for are tried, the smallest sets first (a claim for RWO prefers a RWO
  volume over a RWO+RWX one), and within the first group that has a match the smallest
  volume by capacity wins;
- a volume pre-bound to the claim (`spec.claimRef` naming it, and its uid if set) wins
  outright when it is big enough and its volumeMode fits, whatever its phase or class;
- otherwise a candidate must be Available, not claimed by anyone, not being deleted,
  in the claim's class (`""` only matches `""`), with capacity >= the request, the same
  volumeMode, and labels matching the claim's selector;
- for a WaitForFirstConsumer claim the controller binds only pre-bound volumes: picking
  an unbound one is the scheduler's job, because only it knows the node.

`check_volume_satisfies_claim` is checkVolumeSatisfyClaim, for claims that name their
volume (`spec.volumeName`): its error text ends up in the VolumeMismatch event.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from controllers.common import objects
from minikube_py.api.quantity import Quantity, QuantityError, parse_quantity
from minikube_py.client import from_label_selector

Obj = dict[str, Any]
BETA_STORAGE_CLASS = "volume.beta.kubernetes.io/storage-class"
FILESYSTEM = "Filesystem"


def claim_class(claim: Obj) -> str:
    """GetPersistentVolumeClaimClass: the beta annotation wins over spec.storageClassName."""
    annotations = objects.annotations(claim)
    if BETA_STORAGE_CLASS in annotations:
        return annotations[BETA_STORAGE_CLASS]
    return objects.spec(claim).get("storageClassName") or ""


def volume_class(volume: Obj) -> str:
    """GetPersistentVolumeClass: the beta annotation wins over spec.storageClassName."""
    annotations = objects.annotations(volume)
    if BETA_STORAGE_CLASS in annotations:
        return annotations[BETA_STORAGE_CLASS]
    return objects.spec(volume).get("storageClassName") or ""


def _quantity(raw: Any) -> Quantity:
    try:
        return parse_quantity(raw)
    except QuantityError:
        return parse_quantity(0)


def requested_storage(claim: Obj) -> Quantity:
    return _quantity(((objects.spec(claim).get("resources") or {}).get("requests") or {}).get("storage"))


def volume_capacity(volume: Obj) -> Quantity:
    return _quantity((objects.spec(volume).get("capacity") or {}).get("storage"))


def volume_mode_mismatch(claim: Obj, volume: Obj) -> bool:
    """CheckVolumeModeMismatches: an unset mode means Filesystem on either side."""
    claim_mode = objects.spec(claim).get("volumeMode") or FILESYSTEM
    return claim_mode != (objects.spec(volume).get("volumeMode") or FILESYSTEM)


def is_volume_bound_to_claim(volume: Obj, claim: Obj) -> bool:
    """IsVolumeBoundToClaim: claimRef names the claim, and its uid matches when set."""
    ref = objects.spec(volume).get("claimRef")
    if not ref:
        return False
    if ref.get("name") != objects.name(claim) or ref.get("namespace") != objects.namespace(claim):
        return False
    return not ref.get("uid") or ref.get("uid") == objects.uid(claim)


def access_modes_contained(have: Iterable[str], want: Iterable[str]) -> bool:
    """Every mode in `want` is in `have`."""
    return set(want) <= set(have)


def _matches_selector(claim: Obj, volume: Obj) -> bool:
    selector = objects.spec(claim).get("selector")
    if selector is None:
        return True
    try:
        return from_label_selector(selector).matches(objects.labels(volume))
    except ValueError:
        return False


def _find_in_group(claim: Obj, volumes: list[Obj], delay_binding: bool) -> Obj | None:
    """findMatchingVolume for one access-mode group (node = nil: the controller's path)."""
    requested = requested_storage(claim)
    requested_class = claim_class(claim)
    smallest: Obj | None = None
    for volume in volumes:
        capacity = volume_capacity(volume)
        if capacity < requested or volume_mode_mismatch(claim, volume) or objects.being_deleted(volume):
            continue
        if is_volume_bound_to_claim(volume, claim):
            return volume
        if delay_binding:
            continue  # the scheduler picks unbound volumes for WaitForFirstConsumer claims
        if objects.status(volume).get("phase") != "Available" or objects.spec(volume).get("claimRef"):
            continue
        if not _matches_selector(claim, volume) or volume_class(volume) != requested_class:
            continue
        if smallest is None or volume_capacity(smallest) > capacity:
            smallest = volume
    return smallest


def find_best_match(claim: Obj, volumes: Iterable[Obj], delay_binding: bool) -> Obj | None:
    """findBestMatchForClaim (see the module docstring)."""
    wanted = objects.spec(claim).get("accessModes") or []
    groups: dict[frozenset[str], list[Obj]] = {}
    for volume in volumes:
        modes = frozenset(objects.spec(volume).get("accessModes") or [])
        if access_modes_contained(modes, wanted):
            groups.setdefault(modes, []).append(volume)
    for modes in sorted(groups, key=lambda m: (len(m), sorted(m))):
        # Volumes in name order so that equal candidates are picked deterministically.
        match = _find_in_group(claim, sorted(groups[modes], key=objects.name), delay_binding)
        if match is not None:
            return match
    return None


def check_volume_satisfies_claim(volume: Obj, claim: Obj) -> str | None:
    """checkVolumeSatisfyClaim: None, or why `volume` cannot serve `claim`."""
    if volume_capacity(volume) < requested_storage(claim):
        return "requested PV is too small"
    if volume_class(volume) != claim_class(claim):
        return "storageClassName does not match"
    if volume_mode_mismatch(claim, volume):
        return "incompatible volumeMode"
    if not access_modes_contained(objects.spec(volume).get("accessModes") or [],
                                  objects.spec(claim).get("accessModes") or []):
        return "incompatible accessMode"
    return None

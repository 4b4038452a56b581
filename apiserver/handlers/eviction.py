"""POST pods/{name}/eviction: a pod deletion that respects PodDisruptionBudgets
(pkg/registry/core/pod/storage/eviction.go), what `kubectl drain` calls.

- The body is a policy/v1 (or v1beta1) Eviction whose name must be the pod's; its
  `deleteOptions` are used for the deletion.
- A pod that is Succeeded, Failed or Pending, or already being deleted, is deleted
  without looking at budgets.
- Otherwise the PodDisruptionBudgets of the namespace whose selector matches the pod
  decide: none, the pod is deleted; more than one, 500 (the eviction subresource does not
  support it); one:
    - its status not yet observed for its generation: 429 "still being processed";
    - a pod that is not Ready may go without spending the budget when the budget is
      healthy (unhealthyPodEvictionPolicy IfHealthyBudget, the default) or always
      (AlwaysAllow);
    - `disruptionsAllowed` 0: 429 TooManyRequests with the budget's numbers as cause;
    - else the budget's `disruptionsAllowed` goes down by one and the pod is recorded in
      `disruptedPods` (written with compare-and-swap, retried on a race), then deleted.
- Success: 201 with a Success Status, as Kubernetes answers.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from apiserver import errors
from apiserver.context import Ctx
from apiserver.handlers import deletes
from apiserver.selectors import selector_from_object

Obj = dict[str, Any]
REFUSED = "Cannot evict pod as it would violate the pod's disruption budget."
MAX_DISRUPTED_PODS = 2000
SUCCESS = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}


def _too_many_requests(cause: str) -> errors.StatusError:
    return errors.StatusError(429, "TooManyRequests", REFUSED,
                              details={"causes": [{"reason": "DisruptionBudget", "message": cause}]})


def _ready(pod: Obj) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def _can_ignore_budget(pod: Obj) -> bool:
    phase = (pod.get("status") or {}).get("phase")
    return phase in ("Succeeded", "Failed", "Pending") or bool(pod["metadata"].get("deletionTimestamp"))


async def _budgets_for(ctx: Ctx, pod: Obj) -> list[Obj]:
    info = ctx.server.registry.lookup("policy", "v1", "poddisruptionbudgets")
    if info is None:
        return []
    labels = pod["metadata"].get("labels") or {}
    found = []
    for pdb in (await ctx.server.store.list(info, ctx.namespace)).items:
        selector = (pdb.get("spec") or {}).get("selector")
        if selector is None:
            continue
        try:
            if selector_from_object(selector).matches(labels):
                found.append(pdb)
        except errors.StatusError:
            continue
    return found


async def _spend_budget(ctx: Ctx, pdb: Obj, pod: Obj) -> None:
    """Check the budget and, if it allows, take one disruption from it (CAS)."""
    info = ctx.server.registry.lookup("policy", "v1", "poddisruptionbudgets")
    assert info is not None
    name = pdb["metadata"]["name"]
    pod_name = pod["metadata"]["name"]

    async def compute(current: Obj | None) -> Obj | None:
        if current is None:
            return None  # gone meanwhile: nothing to spend
        status = current.get("status") or {}
        if status.get("observedGeneration", 0) < current["metadata"].get("generation", 0):
            raise _too_many_requests(f"The disruption budget {name} is still being processed by the server.")
        healthy, desired = status.get("currentHealthy", 0), status.get("desiredHealthy", 0)
        if not _ready(pod):
            policy = (current.get("spec") or {}).get("unhealthyPodEvictionPolicy") or "IfHealthyBudget"
            if policy == "AlwaysAllow" or (healthy >= desired and desired > 0):
                return None  # an unready pod of a healthy budget: no disruption spent
        allowed = status.get("disruptionsAllowed", 0)
        if allowed < 0:
            raise errors.forbidden_request("pdb disruptions allowed is negative")
        disrupted = dict(status.get("disruptedPods") or {})
        if len(disrupted) > MAX_DISRUPTED_PODS:
            raise errors.forbidden_request("DisruptedPods map too big - too many evictions not confirmed by PDB controller")
        if allowed == 0:
            raise _too_many_requests(f"The disruption budget {name} needs {desired} healthy pods and has "
                                     f"{healthy} currently")
        disrupted[pod_name] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        new = {**current, "status": {**status, "disruptionsAllowed": allowed - 1, "disruptedPods": disrupted}}
        return new

    await ctx.server.store.guaranteed_update(info, ctx.namespace, name, compute, dry_run=ctx.dry_run)


async def evict_pod(ctx: Ctx, body: Any) -> Obj:
    if not isinstance(body, dict):
        raise errors.bad_request("the object provided is unrecognized (must be of type Eviction)")
    named = (body.get("metadata") or {}).get("name")
    if named and named != ctx.name:
        raise errors.bad_request("name in URL does not match name in Eviction object")
    opts = dict(body.get("deleteOptions") or {})
    if ctx.dry_run:
        opts["dryRun"] = ["All"]
    pod = await ctx.server.store.get(ctx.info, ctx.namespace, ctx.name)
    if not _can_ignore_budget(pod):
        budgets = await _budgets_for(ctx, pod)
        if len(budgets) > 1:
            raise errors.internal("This pod has more than one PodDisruptionBudget, which the eviction subresource "
                                  "does not support.")
        if budgets:
            await _spend_budget(ctx, budgets[0], pod)
    await deletes.delete_one(ctx, ctx.name, opts)
    return dict(SUCCESS)

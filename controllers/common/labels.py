"""Label selector matching for controllers (metav1.LabelSelectorAsSelector + Matches).

Matching comes from the client runtime (minikube_py.client.labels): controllers talk to
the API server only over its REST API and never import its code. Selectors were already
validated by the API server when the objects were written.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from minikube_py.client.labels import Selector, from_label_selector


def parse_selector(selector: Mapping[str, Any] | None) -> Selector | None:
    """The selector as a matcher; None when it is invalid (Kubernetes skips the object then).

    A missing selector matches nothing and `{}` matches everything, as in Kubernetes.
    """
    try:
        return from_label_selector(selector)
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def selects_everything(selector: Mapping[str, Any] | None) -> bool:
    """True for `{}`: the Deployment controller refuses such a selector (SelectingAll)."""
    return selector is not None and not selector.get("matchLabels") and not selector.get("matchExpressions")


def matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str] | None) -> bool:
    """Whether `labels` satisfy the metav1.LabelSelector `selector` (invalid: no match)."""
    parsed = parse_selector(selector)
    return parsed is not None and parsed.matches(labels or {})

"""Label selector matching for controllers (metav1.LabelSelectorAsSelector + Matches).

The grammar and matching live in the API server's selector module, which mirrors
k8s.io/apimachinery exactly; this is the one place the controllers import it, so that if
the layering rule moves it into a shared package only this module changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from apiserver.errors import StatusError
from apiserver.selectors import LabelSelector, selector_from_object


def parse_selector(selector: Mapping[str, Any] | None) -> LabelSelector | None:
    """The selector as a matcher; None when it is invalid (Kubernetes skips the object then).

    A missing selector matches nothing and `{}` matches everything, as in Kubernetes.
    """
    try:
        return selector_from_object(selector)
    except StatusError:
        return None


def selects_everything(selector: Mapping[str, Any] | None) -> bool:
    """True for `{}`: the Deployment controller refuses such a selector (SelectingAll)."""
    return selector is not None and not selector.get("matchLabels") and not selector.get("matchExpressions")


def matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str] | None) -> bool:
    """Whether `labels` satisfy the metav1.LabelSelector `selector` (invalid: no match)."""
    parsed = parse_selector(selector)
    return parsed is not None and parsed.matches(labels or {})

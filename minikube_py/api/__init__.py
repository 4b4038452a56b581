"""Shared API model helpers used by every component (apiserver, controllers, scheduler,
kubelet): things that must behave exactly like their Kubernetes counterparts no matter
which process uses them, such as `resource.Quantity`.
"""

from minikube_py.api.quantity import (
    BINARY_SI,
    DECIMAL_EXPONENT,
    DECIMAL_SI,
    Quantity,
    QuantityError,
    canonical,
    canonical_resource,
    parse_quantity,
)

__all__ = [
    "BINARY_SI",
    "DECIMAL_EXPONENT",
    "DECIMAL_SI",
    "Quantity",
    "QuantityError",
    "canonical",
    "canonical_resource",
    "parse_quantity",
]

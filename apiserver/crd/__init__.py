"""Custom resources: the CRD object and the schemas it gives its resources.

- `definition`: defaulting, validation and status of CustomResourceDefinition objects.
- `structural`: the structural-schema rules a CRD's openAPIV3Schema must follow, and
  helpers for walking such a schema.
- `pruning`, `defaulting`, `validation`: what happens to a custom resource on write,
  in Kubernetes' order: prune unknown fields (their paths feed fieldValidation),
  apply defaults, then validate against the schema.
"""

from apiserver.crd.defaulting import apply_defaults, prune_nulls
from apiserver.crd.definition import crd_status, default_crd, validate_crd, validate_crd_update
from apiserver.crd.pruning import prune
from apiserver.crd.structural import is_structural, validate_structural
from apiserver.crd.validation import validate_custom_object

__all__ = [
    "apply_defaults", "crd_status", "default_crd", "is_structural", "prune", "prune_nulls",
    "validate_crd", "validate_crd_update", "validate_custom_object", "validate_structural",
]

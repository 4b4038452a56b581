"""ObjectMeta and label-selector validation shared by every kind.

Mirrors k8s.io/apimachinery/pkg/api/validation (ValidateObjectMeta and its Update
variant), meta/v1/validation (labels, label selectors) and the extra finalizer check the
core API group adds. The name rule differs per kind and is passed in as a NameFunc
(`name_is_dns_subdomain` for most, `name_is_dns_label` for Namespaces,
`name_is_dns1035_label` for Services, `name_is_path_segment` for RBAC). Whether a
namespace must be set is the caller's business (it knows which kinds are namespaced).
The same module also evaluates selectors, because validation must know whether a
selector matches a template's labels.
"""

from __future__ import annotations

from typing import Any

from apiserver.admission.validation_names import NameFunc, is_label_value, is_qualified_name
from apiserver.admission.validation_util import (
    IS_NEGATIVE,
    as_dict,
    as_int,
    as_list,
    as_str,
    child,
    go_quote,
    go_string_slice,
    immutable,
    index,
    invalid_go,
)
from apiserver.errors import FieldError, forbidden, invalid, required, too_long

TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024
STANDARD_FINALIZERS = {"kubernetes", "orphan", "foregroundDeletion"}
_SELECTOR_OPERATORS = {"In", "NotIn", "Exists", "DoesNotExist"}


def validate_label_name(name: str, path: str) -> list[FieldError]:
    return [invalid(path, name, msg) for msg in is_qualified_name(name)]


def validate_labels(labels: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for name, value in sorted(as_dict(labels).items()):
        errs += validate_label_name(name, path)
        errs += [invalid(path, value, msg) for msg in is_label_value(as_str(value))]
    return errs


def validate_annotations(annotations: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    items = as_dict(annotations)
    for name in sorted(items):
        # The rule is a qualified name, except that case does not matter.
        errs += [invalid(path, name, msg) for msg in is_qualified_name(name.lower())]
    if sum(len(k) + len(as_str(v)) for k, v in items.items()) > TOTAL_ANNOTATION_SIZE_LIMIT:
        errs.append(too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT))
    return errs


def _group_version(api_version: str) -> tuple[str, str]:
    """schema.ParseGroupVersion; an unparsable value yields no version."""
    if api_version.count("/") > 1:
        return "", ""
    group, _, version = api_version.rpartition("/")
    return group, version


def _owner_reference(ref: dict[str, Any], path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    api_version, kind = as_str(ref.get("apiVersion")), as_str(ref.get("kind"))
    group, version = _group_version(api_version)
    if not version:
        errs.append(invalid(child(path, "apiVersion"), api_version, "version must not be empty"))
    if not kind:
        errs.append(invalid(child(path, "kind"), kind, "kind must not be empty"))
    if not as_str(ref.get("name")):
        errs.append(invalid(child(path, "name"), as_str(ref.get("name")), "name must not be empty"))
    if not as_str(ref.get("uid")):
        errs.append(invalid(child(path, "uid"), as_str(ref.get("uid")), "uid must not be empty"))
    if (group, version, kind) == ("", "v1", "Event"):
        errs.append(invalid_go(path, _go_owner_reference(ref), "/v1, Kind=Event is disallowed from being an owner"))
    return errs


def _go_owner_reference(ref: dict[str, Any]) -> str:
    fields = [(name, go_quote(as_str(ref.get(field)))) for name, field in
              (("APIVersion", "apiVersion"), ("Kind", "kind"), ("Name", "name"), ("UID", "uid"))]
    return "v1.OwnerReference{" + ", ".join(f"{n}:{v}" for n, v in fields) + ", ...}"


def validate_owner_references(refs: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    first_controller = ""
    for ref in as_list(refs):
        ref = as_dict(ref)
        errs += _owner_reference(ref, path)
        if ref.get("controller") is True:
            current = f"{as_str(ref.get('kind'))}/{as_str(ref.get('name'))}"
            if first_controller:
                errs.append(invalid_go(path, "[]v1.OwnerReference{...}",
                                       "Only one reference can have Controller set to true. Found \"true\" "
                                       f"in references for {first_controller} and {current}"))
            else:
                first_controller = current
    return errs


def validate_finalizers(finalizers: Any, path: str, *, core: bool = True) -> list[FieldError]:
    """apimachinery's check (errors at `path`), then the core group's own, per index."""
    names = [as_str(f) for f in as_list(finalizers)]
    errs = [invalid(path, name, msg) for name in names for msg in is_qualified_name(name)]
    if "orphan" in names and "foregroundDeletion" in names:
        errs.append(invalid_go(path, go_string_slice(names),
                               "finalizer orphan and foregroundDeletion cannot be both set"))
    return errs + (kube_finalizers(names, path) if core else [])


def kube_finalizers(names: list[Any], path: str) -> list[FieldError]:
    """The core group's extra rule: unqualified finalizers must be standard ones."""
    errs = []
    for i, name in enumerate(names):
        name = as_str(name)
        if "/" not in name and name not in STANDARD_FINALIZERS:
            errs.append(invalid(index(path, i), name,
                                "name is neither a standard finalizer name nor is it fully qualified"))
    return errs


def validate_object_meta(meta: Any, name_fn: NameFunc, path: str = "metadata", *,
                         core: bool = True) -> list[FieldError]:
    """ValidateObjectMeta on create. Name generation must already have happened."""
    meta = as_dict(meta)
    errs: list[FieldError] = []
    generate_name, name = as_str(meta.get("generateName")), as_str(meta.get("name"))
    if generate_name:
        errs += [invalid(child(path, "generateName"), generate_name, msg) for msg in name_fn(generate_name, True)]
    if not name:
        errs.append(required(child(path, "name"), "name or generateName is required"))
    else:
        errs += [invalid(child(path, "name"), name, msg) for msg in name_fn(name, False)]
    return errs + _common_meta(meta, path, core)


def _common_meta(meta: dict[str, Any], path: str, core: bool) -> list[FieldError]:
    errs: list[FieldError] = []
    generation = as_int(meta.get("generation"))
    if generation is not None and generation < 0:
        errs.append(invalid(child(path, "generation"), generation, IS_NEGATIVE))
    errs += validate_labels(meta.get("labels"), child(path, "labels"))
    errs += validate_annotations(meta.get("annotations"), child(path, "annotations"))
    errs += validate_owner_references(meta.get("ownerReferences"), child(path, "ownerReferences"))
    errs += validate_finalizers(meta.get("finalizers"), child(path, "finalizers"), core=core)
    return errs


def validate_object_meta_update(new: Any, old: Any, path: str = "metadata", *,
                                core: bool = True) -> list[FieldError]:
    """ValidateObjectMetaUpdate. The caller must have filled resourceVersion (from the
    stored object, for unconditional updates) before calling."""
    new, old = as_dict(new), as_dict(old)
    errs: list[FieldError] = []
    if old.get("deletionTimestamp"):
        added = sorted(set(map(str, as_list(new.get("finalizers")))) - set(map(str, as_list(old.get("finalizers")))))
        if added:
            errs.append(forbidden(child(path, "finalizers"), "no new finalizers can be added if the object is "
                                  f"being deleted, found new finalizers {go_string_slice(added)}"))
    if not as_str(new.get("resourceVersion")):
        errs.append(invalid(child(path, "resourceVersion"), "", "must be specified for an update"))
    new_gen, old_gen = as_int(new.get("generation")) or 0, as_int(old.get("generation")) or 0
    if new_gen < old_gen:
        errs.append(invalid(child(path, "generation"), new_gen, "must not be decremented"))
    for field in ("name", "namespace", "uid", "creationTimestamp", "deletionTimestamp"):
        errs += immutable(new.get(field, ""), old.get(field, ""), child(path, field))
    errs += immutable(new.get("deletionGracePeriodSeconds"), old.get("deletionGracePeriodSeconds"),
                      child(path, "deletionGracePeriodSeconds"))
    errs += validate_labels(new.get("labels"), child(path, "labels"))
    errs += validate_annotations(new.get("annotations"), child(path, "annotations"))
    errs += validate_owner_references(new.get("ownerReferences"), child(path, "ownerReferences"))
    if core:
        errs += kube_finalizers(as_list(new.get("finalizers")), child(path, "finalizers"))
    return errs


def validate_template_object_meta(meta: Any, path: str) -> list[FieldError]:
    """ValidateTemplateObjectMeta (ephemeral volume claim templates): only labels and
    annotations may be set."""
    meta = as_dict(meta)
    errs = validate_annotations(meta.get("annotations"), child(path, "annotations"))
    errs += validate_labels(meta.get("labels"), child(path, "labels"))
    for field in sorted(set(meta) - {"labels", "annotations", "creationTimestamp"}):
        if meta[field] not in (None, "", {}, []):
            errs.append(forbidden(child(path, field), "cannot be set"))
    return errs


# --- label selectors ------------------------------------------------------------------
def validate_label_selector(selector: Any, path: str) -> list[FieldError]:
    """ValidateLabelSelector with invalid label values rejected."""
    if not isinstance(selector, dict):
        return []
    errs = validate_labels(selector.get("matchLabels"), child(path, "matchLabels"))
    for i, expr in enumerate(as_list(selector.get("matchExpressions"))):
        errs += _selector_requirement(as_dict(expr), index(child(path, "matchExpressions"), i))
    return errs


def _selector_requirement(expr: dict[str, Any], path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    operator, values = as_str(expr.get("operator")), as_list(expr.get("values"))
    if operator in ("In", "NotIn"):
        if not values:
            errs.append(required(child(path, "values"), "must be specified when `operator` is 'In' or 'NotIn'"))
    elif operator in ("Exists", "DoesNotExist"):
        if values:
            errs.append(forbidden(child(path, "values"),
                                  "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"))
    else:
        errs.append(invalid(child(path, "operator"), operator, "not a valid selector operator"))
    errs += validate_label_name(as_str(expr.get("key")), child(path, "key"))
    for i, value in enumerate(values):
        errs += [invalid(index(child(path, "values"), i), value, msg) for msg in is_label_value(as_str(value))]
    return errs


def selector_is_valid(selector: Any) -> bool:
    """Whether LabelSelectorAsSelector would succeed."""
    return isinstance(selector, dict) and not validate_label_selector(selector, "")


def selector_is_empty(selector: Any) -> bool:
    """True for `{}` (selects everything); a missing selector selects nothing instead."""
    sel = as_dict(selector)
    return isinstance(selector, dict) and not as_dict(sel.get("matchLabels")) and not as_list(
        sel.get("matchExpressions"))


def selector_matches(selector: Any, labels: Any) -> bool:
    """labels.Selector.Matches for a metav1.LabelSelector; None matches nothing."""
    if not isinstance(selector, dict):
        return False
    labels = as_dict(labels)
    for key, value in as_dict(selector.get("matchLabels")).items():
        if labels.get(key) != value:
            return False
    for expr in as_list(selector.get("matchExpressions")):
        expr = as_dict(expr)
        present = expr.get("key") in labels
        actual = labels.get(expr.get("key"))
        operator, values = expr.get("operator"), as_list(expr.get("values"))
        ok = {"In": present and actual in values, "NotIn": not present or actual not in values,
              "Exists": present, "DoesNotExist": not present}.get(operator, False)
        if not ok:
            return False
    return True

"""The CustomResourceDefinition object itself: defaults, validation and status.

On create and update kube-apiserver defaults a CRD (singular and listKind from kind,
conversion strategy None, storedVersions), validates it with the apiextensions rules and
messages (name `<plural>.<group>`, DNS names, scope, exactly one storage version, a
structural schema for every version, valid defaults), and its controllers then write
`status.acceptedNames` and the NamesAccepted/Established conditions. `crd_status` does
the controllers' work in one step, so the API server can serve the new resource as soon
as the CRD is stored.

Validation runs on the internal form, as in Kubernetes: when every version has the same
schema the v1-to-internal conversion moves it to `spec.validation`, so errors in it are
reported as `spec.validation.openAPIV3Schema...`; otherwise as
`spec.versions[i].schema.openAPIV3Schema...`. Conversion webhooks are checked for shape
only; CEL rules are not compiled.
"""

from __future__ import annotations

import copy
import datetime
import re
from typing import Any

from apiserver.crd.pruning import prune
from apiserver.crd.structural import (
    Schema,
    child,
    items,
    key,
    properties,
    validate_openapi_schema,
    validate_structural,
)
from apiserver.crd.validation import validate_value
from apiserver.errors import FieldError, forbidden, invalid, not_supported, required

_DNS1123_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN = _DNS1123_LABEL + r"(\." + _DNS1123_LABEL + ")*"
_DNS1035_LABEL = "[a-z]([-a-z0-9]*[a-z0-9])?"
_APPROVAL = "api-approved.kubernetes.io"


# --- names (k8s.io/apimachinery/pkg/util/validation) -----------------------------------
def dns1123_subdomain_errors(value: str) -> list[str]:
    errs = ["must be no more than 253 characters"] if len(value) > 253 else []
    if not re.fullmatch(_DNS1123_SUBDOMAIN, value):
        errs.append("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
                    "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
                    f"validation is '{_DNS1123_SUBDOMAIN}')")
    return errs


def dns1035_label_errors(value: str) -> list[str]:
    errs = ["must be no more than 63 characters"] if len(value) > 63 else []
    if not re.fullmatch(_DNS1035_LABEL, value):
        errs.append("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
                    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', "
                    f"regex used for validation is '{_DNS1035_LABEL}')")
    return errs


class _GoValueError(FieldError):
    """A field error whose bad value is printed as Go's %#v would (`[]string{"v1"}`)."""

    def body(self) -> str:
        return f"Invalid value: {self.value}: {self.detail}"


def _go_strings(values: list[str]) -> str:
    return "[]string{" + ", ".join(f'"{v}"' for v in values) + "}" if values else "[]string(nil)"


def _go_versions(versions: list[dict[str, Any]]) -> str:
    if not versions:
        return "[]apiextensions.CustomResourceDefinitionVersion(nil)"
    rows = [f'apiextensions.CustomResourceDefinitionVersion{{Name:"{v.get("name", "")}", '
            f'Served:{str(bool(v.get("served"))).lower()}, Storage:{str(bool(v.get("storage"))).lower()}, ...}}'
            for v in versions]
    return "[]apiextensions.CustomResourceDefinitionVersion{" + ", ".join(rows) + "}"


# --- defaults --------------------------------------------------------------------------
def default_crd(crd: dict[str, Any]) -> dict[str, Any]:
    """Apply apiextensions.k8s.io/v1 defaults in place (and return the CRD)."""
    spec = crd.setdefault("spec", {})
    names = spec.setdefault("names", {})
    if not names.get("singular") and names.get("kind"):
        names["singular"] = names["kind"].lower()
    if not names.get("listKind") and names.get("kind"):
        names["listKind"] = names["kind"] + "List"
    conversion = spec.setdefault("conversion", {"strategy": "None"})
    service = ((conversion.get("webhook") or {}).get("clientConfig") or {}).get("service")
    if isinstance(service, dict):
        service.setdefault("port", 443)
    status = crd.setdefault("status", {})
    if not status.get("storedVersions"):
        status["storedVersions"] = [v["name"] for v in spec.get("versions", []) if v.get("storage")]
    return crd


# --- validation ------------------------------------------------------------------------
def _hoisted(versions: list[dict[str, Any]], field: str) -> bool:
    """The v1->internal conversion moves a per-version field up when all versions agree."""
    return bool(versions) and all(v.get(field) is not None and v.get(field) == versions[0].get(field)
                                  for v in versions)


def _validate_metadata(crd: dict[str, Any]) -> list[FieldError]:
    meta, spec = crd.get("metadata") or {}, crd.get("spec") or {}
    name = meta.get("name", "")
    if not name and not meta.get("generateName"):
        return [required("metadata.name", "name or generateName is required")]
    messages = dns1123_subdomain_errors(name)
    if name != f"{(spec.get('names') or {}).get('plural', '')}.{spec.get('group', '')}":
        messages.append('must be spec.names.plural+"."+spec.group')
    errs = [invalid("metadata.name", name, m) for m in messages]
    group = spec.get("group", "")
    protected = group in ("k8s.io", "kubernetes.io") or group.endswith((".k8s.io", ".kubernetes.io"))
    if protected and _APPROVAL not in (meta.get("annotations") or {}):
        errs.append(required(f"metadata.annotations[{_APPROVAL}]", f'protected groups must have approval annotation '
                             f'"{_APPROVAL}", see https://github.com/kubernetes/enhancements/pull/1111'))
    return errs


def validate_names(names: dict[str, Any], path: str) -> list[FieldError]:
    """ValidateCustomResourceDefinitionNames (spec.names and status.acceptedNames)."""
    errs: list[FieldError] = []
    for field in ("plural", "singular"):
        value = names.get(field, "")
        if value and dns1035_label_errors(value):
            errs.append(invalid(child(path, field), value, ",".join(dns1035_label_errors(value))))
    for field in ("kind", "listKind"):
        value = names.get(field, "")
        if value and dns1035_label_errors(value.lower()):
            errs.append(invalid(child(path, field), value, "may have mixed case, but should otherwise match: "
                                + ",".join(dns1035_label_errors(value.lower()))))
    for field in ("shortNames", "categories"):
        for i, value in enumerate(names.get(field) or []):
            if dns1035_label_errors(value):
                errs.append(invalid(f"{child(path, field)}[{i}]", value, ",".join(dns1035_label_errors(value))))
    if names.get("kind") and names.get("kind") == names.get("listKind"):
        errs.append(invalid(child(path, "listKind"), names["listKind"], "kind and listKind may not be the same"))
    return errs


def _validate_group_scope(spec: dict[str, Any]) -> list[FieldError]:
    errs: list[FieldError] = []
    group = spec.get("group", "")
    if not group:
        errs.append(required("spec.group"))
    elif dns1123_subdomain_errors(group):
        errs.append(invalid("spec.group", group, ",".join(dns1123_subdomain_errors(group))))
    elif "." not in group:
        errs.append(invalid("spec.group", group, "should be a domain with at least one dot"))
    scope = spec.get("scope", "")
    if not scope:
        errs.append(required("spec.scope"))
    elif scope not in ("Cluster", "Namespaced"):
        errs.append(not_supported("spec.scope", scope, ["Cluster", "Namespaced"]))
    if spec.get("preserveUnknownFields"):
        errs.append(invalid("spec.preserveUnknownFields", True, "must be false"))
    return errs


def _validate_versions(spec: dict[str, Any]) -> list[FieldError]:
    versions = spec.get("versions") or []
    errs: list[FieldError] = []
    hoist_schema, hoist_sub = _hoisted(versions, "schema"), _hoisted(versions, "subresources")
    for i, version in enumerate(versions):
        path = f"spec.versions[{i}]"
        name = version.get("name", "")
        if dns1035_label_errors(name):
            errs.append(invalid(child(path, "name"), name, ",".join(dns1035_label_errors(name))))
        if version.get("deprecationWarning") is not None and not version.get("deprecated"):
            errs.append(invalid(child(path, "deprecationWarning"), version["deprecationWarning"],
                                "can only be set for deprecated versions"))
        schema = (version.get("schema") or {}).get("openAPIV3Schema")
        if schema is None:
            errs.append(required(f"{path}.schema.openAPIV3Schema", "schemas are required"))
        elif not hoist_schema:
            errs += validate_crd_schema(schema, f"{path}.schema", "status" in (version.get("subresources") or {}))
        if not hoist_sub:
            errs += _validate_subresources(version.get("subresources"), f"{path}.subresources")
    if hoist_schema:
        status = "status" in (versions[0].get("subresources") or {})
        errs += validate_crd_schema(versions[0]["schema"]["openAPIV3Schema"], "spec.validation", status)
    if hoist_sub:
        errs += _validate_subresources(versions[0]["subresources"], "spec.subresources")
    names = [v.get("name") for v in versions]
    if len(set(names)) != len(names):
        errs.append(_GoValueError("Invalid", "spec.versions", _go_versions(versions), "must contain unique version names"))
    if sum(1 for v in versions if v.get("storage")) != 1:
        errs.append(_GoValueError("Invalid", "spec.versions", _go_versions(versions),
                                  "must have exactly one version marked as storage version"))
    return errs


def _validate_subresources(sub: dict[str, Any] | None, path: str) -> list[FieldError]:
    scale = (sub or {}).get("scale")
    if not isinstance(scale, dict):
        return []
    errs: list[FieldError] = []
    for field, prefixes in (("specReplicasPath", (".spec.",)), ("statusReplicasPath", (".status.",)),
                            ("labelSelectorPath", (".spec.", ".status."))):
        value = scale.get(field) or ""
        where = f"{path}.scale.{field}"
        if not value:
            if field != "labelSelectorPath":
                errs.append(required(where))
        elif not value.startswith("."):
            errs.append(invalid(where, value, "must be a simple json path starting with ."))
        elif not value.startswith(prefixes):
            under = " or ".join(p.rstrip(".") for p in prefixes)
            errs.append(invalid(where, value, f"should be a json path under {'either ' if len(prefixes) > 1 else ''}"
                                f"{under}"))
    return errs


def validate_crd_schema(schema: Schema, path: str, status_enabled: bool = False) -> list[FieldError]:
    """validateCustomResourceDefinitionValidation for one openAPIV3Schema under `path`."""
    root = child(path, "openAPIV3Schema")
    errs: list[FieldError] = []
    if status_enabled and schema.get("type", "object") != "object":
        errs.append(invalid(f"{root}.type", schema.get("type"), 'only "object" is allowed as the type at the root of '
                            'the schema if the status subresource is enabled'))
    if schema.get("nullable"):
        errs.append(forbidden(f"{root}.nullable", "nullable cannot be true at the root"))
    structural = validate_structural(schema, root)
    errs += structural or validate_defaults(schema, root)
    return errs + validate_openapi_schema(schema, root)


def validate_defaults(s: Schema | None, path: str) -> list[FieldError]:
    """Every `default` must validate against its schema and must not be pruned."""
    if not isinstance(s, dict):
        return []
    errs: list[FieldError] = []
    if "default" in s and s["default"] is not None:
        where = child(path, "default")
        if prune(copy.deepcopy(s["default"]), s, resource_root=bool(s.get("x-kubernetes-embedded-resource"))):
            errs.append(invalid(where, s["default"], "must not have unknown fields"))
        for err in validate_value(s["default"], {k: v for k, v in s.items() if k != "default"}):
            detail = err.detail.lstrip()
            errs.append(type(err)(err.type, child(where, err.field) if err.field else where, err.value, detail))
    errs += validate_defaults(items(s), child(path, "items"))
    for name, prop in properties(s).items():
        errs += validate_defaults(prop, key(child(path, "properties"), name))
    return errs


def _validate_conversion(conversion: dict[str, Any] | None) -> list[FieldError]:
    if not conversion:
        return []
    strategy = conversion.get("strategy", "")
    if not strategy:
        return [required("spec.conversion.strategy")]
    if strategy not in ("None", "Webhook"):
        return [not_supported("spec.conversion.strategy", strategy, ["None", "Webhook"])]
    webhook = conversion.get("webhook")
    if strategy == "None":
        return [forbidden("spec.conversion.webhookClientConfig", "should not be set when strategy is not set to "
                          "Webhook")] if webhook else []
    config = (webhook or {}).get("clientConfig")
    if not config:
        return [required("spec.conversion.webhookClientConfig", "required when strategy is set to Webhook")]
    errs = []
    if ("url" in config) == ("service" in config):
        errs.append(required("spec.conversion.webhookClientConfig", "exactly one of url or service is required"))
    review = (webhook or {}).get("conversionReviewVersions") or []
    if not review:
        errs.append(required("spec.conversion.conversionReviewVersions"))
    elif not {"v1", "v1beta1"} & set(review):
        errs.append(_GoValueError("Invalid", "spec.conversion.conversionReviewVersions", _go_strings(review),
                                  "must include at least one of v1, v1beta1"))
    return errs


def _validate_status(crd: dict[str, Any]) -> list[FieldError]:
    status, versions = crd.get("status") or {}, (crd.get("spec") or {}).get("versions") or []
    errs = validate_names(status.get("acceptedNames") or {}, "status.acceptedNames")
    stored = status.get("storedVersions") or []
    if not stored:
        return errs + [_GoValueError("Invalid", "status.storedVersions", _go_strings(stored),
                                     "must have at least one stored version")]
    served = {v.get("name") for v in versions}
    for v in versions:
        if v.get("storage") and v.get("name") not in stored:
            errs.append(_GoValueError("Invalid", "status.storedVersions", _go_strings(stored),
                                      f"must have the storage version {v.get('name')}"))
    for i, name in enumerate(stored):
        if name not in served:
            errs.append(invalid(f"status.storedVersions[{i}]", name, f"missing from spec.versions; {name} was "
                                f"previously a storage version, and must remain in spec.versions until a storage "
                                f"migration ensures no data remains persisted in {name} and removes {name} from "
                                f"status.storedVersions"))
    return errs


def validate_crd(crd: dict[str, Any]) -> list[FieldError]:
    """Validate a (defaulted) CustomResourceDefinition on create, as apiextensions does."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    errs = _validate_metadata(crd) + _validate_group_scope(spec) + _validate_versions(spec)
    errs += [required(f"spec.names.{f}") for f in ("plural", "singular", "kind", "listKind") if not names.get(f)]
    errs += validate_names(names, "spec.names")
    errs += _validate_conversion(spec.get("conversion"))
    return errs + _validate_status(crd)


def validate_crd_update(crd: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    """Validate an update: everything `validate_crd` checks, plus immutable fields."""
    errs = validate_crd(crd)
    spec, old_spec = crd.get("spec") or {}, old.get("spec") or {}
    immutable = [("spec.group", spec.get("group"), old_spec.get("group")),
                 ("spec.names.plural", (spec.get("names") or {}).get("plural"),
                  (old_spec.get("names") or {}).get("plural"))]
    if _condition(old, "Established") == "True":
        immutable += [("spec.scope", spec.get("scope"), old_spec.get("scope")),
                      ("spec.names.kind", (spec.get("names") or {}).get("kind"),
                       (old_spec.get("names") or {}).get("kind"))]
    errs += [invalid(path, new, "field is immutable") for path, new, prev in immutable if new != prev]
    return errs


# --- status ----------------------------------------------------------------------------
def _condition(crd: dict[str, Any], kind: str) -> str | None:
    for cond in (crd.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return cond.get("status")
    return None


def _conflicts(crd: dict[str, Any], others: list[dict[str, Any]]) -> tuple[dict[str, Any], str, str]:
    """The naming controller: (accepted names, conflict reason, message)."""
    spec = crd.get("spec") or {}
    wanted = spec.get("names") or {}
    accepted = dict((crd.get("status") or {}).get("acceptedNames") or {})
    resources: set[str] = set()
    kinds: set[str] = set()
    for other in others:
        if (other.get("metadata") or {}).get("name") == (crd.get("metadata") or {}).get("name"):
            continue
        if (other.get("spec") or {}).get("group") != spec.get("group"):
            continue
        taken = (other.get("status") or {}).get("acceptedNames") or {}
        resources.update([taken.get("plural", ""), taken.get("singular", "")] + list(taken.get("shortNames") or []))
        kinds.update([taken.get("kind", ""), taken.get("listKind", "")])
    reason = message = ""
    # Checked in the naming controller's order; the last conflict found is reported.
    for field, used, why in (("plural", resources, "PluralConflict"), ("singular", resources, "SingularConflict"),
                             ("shortNames", resources, "ShortNamesConflict"),
                             ("kind", kinds, "KindConflict"), ("listKind", kinds, "ListKindConflict")):
        if field == "shortNames":
            mine = accepted.get("shortNames") or []
            clashes = [s for s in wanted.get("shortNames") or [] if s in used and s not in mine]
            if clashes:
                reason, message = why, ", ".join(f'"{s}" is already in use' for s in clashes)
            else:
                accepted["shortNames"] = list(wanted.get("shortNames") or [])
            continue
        name = wanted.get(field, "")
        if name == accepted.get(field) or name not in used:
            accepted[field] = name
        else:
            reason, message = why, f'"{name}" is already in use'
    accepted["categories"] = list(wanted.get("categories") or [])
    return {k: v for k, v in accepted.items() if v}, reason, message


def crd_status(crd: dict[str, Any], others: list[dict[str, Any]] | None = None,
               now: str | None = None) -> dict[str, Any]:
    """The status kube-apiserver's CRD controllers settle on: acceptedNames, NamesAccepted
    (NoConflicts, or e.g. PluralConflict against `others` in the same group) and
    Established (InitialNamesAccepted once the names are accepted), storedVersions."""
    now = now or datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    accepted, reason, message = _conflicts(crd, others or [])
    previous = {c.get("type"): c for c in (crd.get("status") or {}).get("conditions") or []}
    if reason:
        names_cond = {"type": "NamesAccepted", "status": "False", "reason": reason, "message": message}
    else:
        names_cond = {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
                      "message": "no conflicts found"}
    established = previous.get("Established")
    if established is None or established.get("status") != "True":
        established = ({"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
                        "message": "the initial names have been accepted"} if not reason else
                       {"type": "Established", "status": "False", "reason": "NotAccepted",
                        "message": "not all names are accepted"})
    conditions = []
    for cond in (names_cond, established):
        old = previous.get(cond["type"])
        keep = old is not None and old.get("status") == cond["status"] and old.get("lastTransitionTime")
        conditions.append({"type": cond["type"], "status": cond["status"],
                           "lastTransitionTime": old["lastTransitionTime"] if keep else now,
                           "reason": cond["reason"], "message": cond["message"]})
    stored = list((crd.get("status") or {}).get("storedVersions") or [])
    for version in (crd.get("spec") or {}).get("versions") or []:
        if version.get("storage") and version.get("name") not in stored:
            stored.append(version["name"])
    return {"conditions": conditions, "acceptedNames": accepted, "storedVersions": stored}

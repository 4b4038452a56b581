"""Probes and lifecycle hooks: exactly one handler, valid ports, sane thresholds.

Mirrors validateProbe / validateHandler / validateLifecycle of the core group. A probe's
handler is one of exec, httpGet, tcpSocket or grpc; a lifecycle hook's is exec, httpGet,
tcpSocket or sleep. Liveness and startup probes must have successThreshold 1 (the
defaulting fills 1 when unset); readiness probes may not set terminationGracePeriodSeconds.
"""

from __future__ import annotations

from typing import Any

from apiserver.admission.validation_names import is_http_header_name, is_valid_port_name, is_valid_port_num
from apiserver.admission.validation_util import IS_NEGATIVE, as_dict, as_int, as_list, as_str, child
from apiserver.errors import FieldError, forbidden, invalid, not_supported, required

_PROBE_FIELDS = ("initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold", "failureThreshold")


def validate_port_num_or_name(port: Any, path: str) -> list[FieldError]:
    """ValidatePortNumOrName for an IntOrString port."""
    if isinstance(port, str):
        return [invalid(path, port, msg) for msg in is_valid_port_name(port)]
    number = as_int(port) or 0
    return [invalid(path, number, msg) for msg in is_valid_port_num(number)]


def _exec(action: dict[str, Any], path: str, _grace: int | None) -> list[FieldError]:
    return [] if as_list(action.get("command")) else [required(child(path, "command"), "")]


def _http_get(action: dict[str, Any], path: str, _grace: int | None) -> list[FieldError]:
    errs: list[FieldError] = []
    if not as_str(action.get("path")):
        errs.append(required(child(path, "path"), ""))
    errs += validate_port_num_or_name(action.get("port"), child(path, "port"))
    scheme = action.get("scheme", "")
    if scheme not in ("HTTP", "HTTPS"):
        errs.append(not_supported(child(path, "scheme"), scheme, ["HTTP", "HTTPS"]))
    for header in as_list(action.get("httpHeaders")):
        name = as_str(as_dict(header).get("name"))
        errs += [invalid(child(path, "httpHeaders"), name, msg) for msg in is_http_header_name(name)]
    return errs


def _tcp_socket(action: dict[str, Any], path: str, _grace: int | None) -> list[FieldError]:
    return validate_port_num_or_name(action.get("port"), child(path, "port"))


def _grpc(action: dict[str, Any], path: str, _grace: int | None) -> list[FieldError]:
    number = as_int(action.get("port")) or 0
    return [invalid(child(path, "port"), number, msg) for msg in is_valid_port_num(number)]


def _sleep(action: dict[str, Any], path: str, grace: int | None) -> list[FieldError]:
    seconds = as_int(action.get("seconds")) or 0
    if grace is not None and (seconds <= 0 or seconds > grace):
        return [invalid(path, seconds, f"must be greater than 0 and less than terminationGracePeriodSeconds ({grace})")]
    return []


_CHECKS = {"exec": _exec, "httpGet": _http_get, "tcpSocket": _tcp_socket, "grpc": _grpc, "sleep": _sleep}


def validate_handler(handler: dict[str, Any], kinds: tuple[str, ...], grace: int | None,
                     path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    count = 0
    for kind in kinds:
        action = handler.get(kind)
        if not isinstance(action, dict):
            continue
        if count > 0:
            errs.append(forbidden(child(path, kind), "may not specify more than 1 handler type"))
        else:
            count += 1
            errs += _CHECKS[kind](action, child(path, kind), grace)
    if count == 0:
        errs.append(required(path, "must specify a handler type"))
    return errs


def validate_probe(probe: Any, grace: int | None, path: str, kind: str) -> list[FieldError]:
    """kind is livenessProbe, readinessProbe or startupProbe."""
    if not isinstance(probe, dict):
        return []
    errs = validate_handler(probe, ("exec", "httpGet", "tcpSocket", "grpc"), grace, path)
    for field in _PROBE_FIELDS:
        value = as_int(probe.get(field))
        if value is not None and value < 0:
            errs.append(invalid(child(path, field), value, IS_NEGATIVE))
    tgps = as_int(probe.get("terminationGracePeriodSeconds"))
    if tgps is not None and tgps <= 0:
        errs.append(invalid(child(path, "terminationGracePeriodSeconds"), tgps, "must be greater than 0"))
    if kind in ("livenessProbe", "startupProbe"):
        threshold = as_int(probe.get("successThreshold"))
        if threshold != 1:
            errs.append(invalid(child(path, "successThreshold"), threshold or 0, "must be 1"))
    elif tgps is not None:
        errs.append(invalid(child(path, "terminationGracePeriodSeconds"), tgps, "must not be set for readinessProbes"))
    return errs


def validate_lifecycle(lifecycle: dict[str, Any], grace: int | None, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for hook in ("postStart", "preStop"):
        handler = lifecycle.get(hook)
        if isinstance(handler, dict):
            errs += validate_handler(handler, ("exec", "httpGet", "tcpSocket", "sleep"), grace, child(path, hook))
    return errs

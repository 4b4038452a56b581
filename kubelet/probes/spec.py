"""A container's probe spec as the kubelet reads it, and the small Go-isms its messages use.

The API server defaults probe fields, but the prober must not trust that (a pod written
by an older client, a hand-made object in a test): `ProbeSpec.parse` applies the same
defaults (period 10 s, timeout 1 s, thresholds 1 and 3) and says which handler is set.

Probe results and failure messages reach users verbatim in `kubectl describe pod`
events, and they are Go-formatted there: `strconv.Quote` for URLs and commands,
`time.Duration` for timeouts, `net.JoinHostPort` for addresses. The helpers here produce
exactly those spellings so the messages read like a real node's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from minikube_py.api.gostrings import go_quote

# Probe types, spelled as the kubelet's probeType.String() (they start event messages).
LIVENESS, READINESS, STARTUP = "Liveness", "Readiness", "Startup"
FIELDS = {LIVENESS: "livenessProbe", READINESS: "readinessProbe", STARTUP: "startupProbe"}
HANDLERS = ("exec", "httpGet", "tcpSocket", "grpc")

# probe.Result, as pkg/probe spells it (it appears in "errored and resulted in %s state").
SUCCESS, WARNING, FAILURE, UNKNOWN = "success", "warning", "failure", "unknown"

DEFAULT_PERIOD = 10
DEFAULT_TIMEOUT = 1
DEFAULT_SUCCESS_THRESHOLD = 1
DEFAULT_FAILURE_THRESHOLD = 3
MAX_OUTPUT = 10 * 1024  # the prober keeps at most 10 KiB of a response body / exec output


class ProbeError(Exception):
    """The probe could not be run at all (say a named port the container does not
    declare): the kubelet reports it as "errored" and throws the result away."""


@dataclass(frozen=True)
class Outcome:
    """One probe run: a probe.Result, the output the kubelet keeps (the failure message),
    and the error when the probe errored rather than failed."""

    result: str
    output: str = ""
    error: str | None = None


@dataclass(frozen=True)
class ProbeSpec:
    """One of a container's livenessProbe / readinessProbe / startupProbe, defaulted."""

    kind: str  # LIVENESS, READINESS or STARTUP
    handler: str  # "exec", "httpGet", "tcpSocket", "grpc", or "" when none is set
    action: Mapping[str, Any] = field(default_factory=dict)
    initial_delay: int = 0
    period: int = DEFAULT_PERIOD
    timeout: int = DEFAULT_TIMEOUT
    success_threshold: int = DEFAULT_SUCCESS_THRESHOLD
    failure_threshold: int = DEFAULT_FAILURE_THRESHOLD
    termination_grace_period: int | None = None

    @classmethod
    def parse(cls, kind: str, probe: Mapping[str, Any]) -> ProbeSpec:
        if kind not in FIELDS:
            raise ValueError(f"unknown probe type {kind!r}")
        handler = next((h for h in HANDLERS if isinstance(probe.get(h), Mapping)), "")
        grace = probe.get("terminationGracePeriodSeconds")
        return cls(
            kind=kind, handler=handler, action=dict(probe[handler]) if handler else {},
            initial_delay=max(_int(probe, "initialDelaySeconds", 0), 0),
            period=_positive(probe, "periodSeconds", DEFAULT_PERIOD),
            timeout=_positive(probe, "timeoutSeconds", DEFAULT_TIMEOUT),
            success_threshold=_positive(probe, "successThreshold", DEFAULT_SUCCESS_THRESHOLD),
            failure_threshold=_positive(probe, "failureThreshold", DEFAULT_FAILURE_THRESHOLD),
            termination_grace_period=int(grace) if isinstance(grace, int) and not isinstance(grace, bool) else None,
        )


def _int(probe: Mapping[str, Any], key: str, default: int) -> int:
    value = probe.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{key} must be an integer, not {value!r}")
    return value


def _positive(probe: Mapping[str, Any], key: str, default: int) -> int:
    value = _int(probe, key, default)
    return value if value > 0 else default


def probes_of(container: Mapping[str, Any]) -> dict[str, ProbeSpec]:
    """The probes a container declares, by kind."""
    return {kind: ProbeSpec.parse(kind, container[name]) for kind, name in FIELDS.items()
            if isinstance(container.get(name), Mapping)}


# -- ports ------------------------------------------------------------------------------

_ATOI = re.compile(r"[+-]?[0-9]+")


def resolve_port(port: Any, container: Mapping[str, Any]) -> int:
    """A probe's port: a number, or the name of one of the container's ports (a string
    holding a number also works, as in the kubelet's "last ditch effort")."""
    if isinstance(port, str):
        for declared in container.get("ports") or []:
            if declared.get("name") == port:
                number = declared.get("containerPort")
                break
        else:
            if not _ATOI.fullmatch(port):
                raise ProbeError(f"strconv.Atoi: parsing {go_quote(port)}: invalid syntax")
            number = int(port)
            if not -(2**63) <= number < 2**63:
                raise ProbeError(f"strconv.Atoi: parsing {go_quote(port)}: value out of range")
    elif isinstance(port, int) and not isinstance(port, bool):
        number = port
    else:
        number = 0  # an unset IntOrString is the integer 0
    if not isinstance(number, int) or not 0 < number < 65536:
        raise ProbeError(f"invalid port number: {number}")
    return number


# -- Go spellings -----------------------------------------------------------------------



def go_duration(seconds: float) -> str:
    """Go's time.Duration String() for a probe timeout: 1s, 500ms, 1m30s, 1h0m0s."""
    if seconds == 0:
        return "0s"
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{secs:g}s"
    if hours or minutes:
        text = f"{int(minutes)}m{text}"
    if hours:
        text = f"{int(hours)}h{text}"
    return text


def join_host_port(host: str, port: int) -> str:
    """net.JoinHostPort: brackets around IPv6 addresses."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def expand_static(argv: list[str], env: list[Mapping[str, Any]] | None) -> list[str]:
    """`$(VAR)` expansion of an exec probe's command with the container's *static* env
    (the kubelet's ExpandContainerCommandOnlyStatic): entries with `valueFrom` count as
    empty strings, unknown references stay as written, `$$` is a literal `$`."""
    mapping = {e["name"]: str(e.get("value") or "") for e in env or [] if e.get("name")}
    return [_expand(arg, mapping) for arg in argv]


def _expand(text: str, mapping: Mapping[str, str]) -> str:
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch != "$" or i + 1 >= n:
            out.append(ch)
            i += 1
            continue
        nxt = text[i + 1]
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "(" and (end := text.find(")", i + 2)) != -1:
            name = text[i + 2:end]
            out.append(mapping.get(name, f"$({name})"))
            i = end + 1
        else:  # "$x" or an unterminated "$(": literal
            out.append("$" + nxt)
            i += 2
    return "".join(out)

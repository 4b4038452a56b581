"""podinfo's flags (pflag syntax) and their PODINFO_* environment variables (viper).

Precedence as in podinfo: a flag set on the command line, else PODINFO_<FLAG> (dashes
become underscores), else the default. Unknown flags print usage and exit 2.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from typing import Any

# name -> (type, default, help); "{version}" in a default is filled in at parse time.
FLAGS: dict[str, tuple[str, Any, str]] = {
    "port": ("int", 9898, "HTTP port"),
    "secure-port": ("str", "0", "HTTPS port (not served by mkp's podinfo)"),
    "port-metrics": ("int", 0, "metrics port"),
    "grpc-port": ("int", 0, "gRPC port (not served by mkp's podinfo)"),
    "grpc-service-name": ("str", "podinfo", "gPRC service name"),
    "host": ("str", "", "Host to bind service to"),
    "level": ("str", "info", "log level debug, info, warn, error, fatal or panic"),
    "backend-url": ("list", [], "backend service URL"),
    "http-client-timeout": ("duration", 120.0, "client timeout duration"),
    "http-server-timeout": ("duration", 30.0, "server read and write timeout duration"),
    "http-server-shutdown-timeout": ("duration", 5.0, "server graceful shutdown timeout duration"),
    "data-path": ("str", "/data", "data local path"),
    "config-path": ("str", "", "config dir path"),
    "cert-path": ("str", "/data/cert", "certificate path for HTTPS port"),
    "config": ("str", "config.yaml", "config file name"),
    "ui-path": ("str", "./ui", "UI local path"),
    "ui-logo": ("str", "https://raw.githubusercontent.com/stefanprodan/podinfo/gh-pages/cuddle_clap.gif",
                "UI logo"),
    "ui-color": ("str", "#34577c", "UI color"),
    "ui-message": ("str", "greetings from podinfo v{version}", "UI message"),
    "h2c": ("bool", False, "allow upgrading to H2C"),
    "random-delay": ("bool", False, "between 0 and 5 seconds random delay by default"),
    "random-delay-unit": ("str", "s", "either s(seconds) or ms(milliseconds"),
    "random-delay-min": ("int", 0, "min for random delay: 0 by default"),
    "random-delay-max": ("int", 5, "max for random delay: 5 by default"),
    "random-error": ("bool", False, "1/3 chances of a random response error"),
    "unhealthy": ("bool", False, "when set, healthy state is never reached"),
    "unready": ("bool", False, "when set, ready state is never reached"),
    "stress-cpu": ("int", 0, "number of CPU cores with 100 load"),
    "stress-memory": ("int", 0, "MB of data to load into memory"),
    "cache-server": ("str", "", "Redis address in the format 'tcp://<host>:<port>' (not served)"),
    "version": ("bool", False, "get version number"),
}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


class UsageError(Exception):
    pass


@dataclass
class Config:
    values: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Any:
        return self.values[name]


def _duration(text: str) -> float:
    if text in ("0", ""):
        return 0.0
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise UsageError(f'invalid duration "{text}"')
    return sum(float(n) * _UNITS[u] for n, u in parts)


def _convert(name: str, kind: str, text: str) -> Any:
    try:
        if kind == "int":
            return int(text)
        if kind == "bool":
            if text.lower() in ("1", "t", "true"):
                return True
            if text.lower() in ("0", "f", "false"):
                return False
            raise ValueError(text)
        if kind == "duration":
            return _duration(text)
        if kind == "list":
            return [item for item in text.split(",") if item]
        return text
    except (ValueError, UsageError):
        raise UsageError(f'invalid argument "{text}" for "--{name}" flag') from None


def parse(argv: list[str], environ: dict[str, str], version: str) -> Config:
    """Flags from argv, then PODINFO_* from environ, then defaults."""
    given: dict[str, Any] = {}
    args = iter(argv)
    for arg in args:
        if arg in ("-h", "--help"):
            raise SystemExit(usage())
        if arg == "-v":
            arg = "--version"
        if not arg.startswith("--"):
            continue  # pflag keeps positional arguments; podinfo ignores them
        name, eq, value = arg[2:].partition("=")
        if name not in FLAGS:
            raise UsageError(f"unknown flag: --{name}")
        kind = FLAGS[name][0]
        if not eq:
            if kind == "bool":
                value = "true"
            else:
                value = next(args, None)
                if value is None:
                    raise UsageError(f"flag needs an argument: --{name}")
        converted = _convert(name, kind, value)
        given[name] = given.get(name, []) + converted if kind == "list" else converted
    values: dict[str, Any] = {}
    for name, (kind, default, _) in FLAGS.items():
        env = environ.get("PODINFO_" + name.upper().replace("-", "_"))
        if name in given:
            values[name] = given[name]
        elif env is not None:
            values[name] = _convert(name, kind, env)
        else:
            values[name] = default.format(version=version) if isinstance(default, str) else default
    return Config(values)


def usage() -> str:
    lines = ["Usage of podinfo:"]
    for name, (kind, default, help_text) in FLAGS.items():
        shown = "" if kind == "bool" else f" {kind}"
        lines.append(f"      --{name}{shown}   {help_text} (default {default!r})")
    return "\n".join(lines)


def fail(message: str) -> int:
    print(f"Error: {message}\n\n{usage()}", file=sys.stderr)
    return 2


def hostname() -> str:
    """os.Hostname(): the uts name; under the process runtime (no uts namespace) the
    kubelet's HOSTNAME (the pod name) is the better answer, so it wins when set."""
    return os.environ.get("HOSTNAME") or os.uname().nodename

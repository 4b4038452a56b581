"""Connection settings from a kubeconfig: server URL, bearer token, TLS.

Reads the same fields client-go's clientcmd reads for the common cases: the context's
cluster (`server`, `certificate-authority[-data]`, `insecure-skip-tls-verify`) and user
(`token`, `tokenFile`, `client-certificate[-data]` + `client-key[-data]`). Exec and
auth-provider plugins are not supported. Relative file paths are relative to the
kubeconfig's directory, as kubectl resolves them.
"""

from __future__ import annotations

import base64
import os
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


class ConfigError(Exception):
    """A kubeconfig that does not say how to reach a cluster."""


@dataclass
class ConnectionConfig:
    server: str
    token: str | None = None
    ssl_context: ssl.SSLContext | None = None
    namespace: str = "default"


def _named(config: dict[str, Any], section: str, name: str) -> dict[str, Any]:
    key = section[:-1]  # clusters -> cluster
    for entry in config.get(section) or []:
        if entry.get("name") == name:
            return dict(entry.get(key) or {})
    raise ConfigError(f"kubeconfig has no {key} named {name!r}")


def _resolve(base: Path, value: str) -> Path:
    path = Path(os.path.expanduser(value))
    return path if path.is_absolute() else base / path


def _ssl_context(base: Path, cluster: dict[str, Any], user: dict[str, Any]) -> ssl.SSLContext | None:
    if not str(cluster.get("server", "")).startswith("https:"):
        return None
    context = ssl.create_default_context()
    if cluster.get("insecure-skip-tls-verify"):
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif cluster.get("certificate-authority-data"):
        context.load_verify_locations(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
    elif cluster.get("certificate-authority"):
        context.load_verify_locations(cafile=str(_resolve(base, cluster["certificate-authority"])))
    _load_client_cert(base, context, user)
    return context


def _load_client_cert(base: Path, context: ssl.SSLContext, user: dict[str, Any]) -> None:
    if user.get("client-certificate") and user.get("client-key"):
        context.load_cert_chain(str(_resolve(base, user["client-certificate"])),
                                str(_resolve(base, user["client-key"])))
    elif user.get("client-certificate-data") and user.get("client-key-data"):
        # ssl can load a certificate chain only from files.
        with tempfile.TemporaryDirectory() as tmp:
            cert, key = Path(tmp) / "client.crt", Path(tmp) / "client.key"
            cert.write_bytes(base64.b64decode(user["client-certificate-data"]))
            key.write_bytes(base64.b64decode(user["client-key-data"]))
            key.chmod(0o600)
            context.load_cert_chain(str(cert), str(key))


def load(path: str | os.PathLike[str], context: str | None = None) -> ConnectionConfig:
    """The connection settings of `context` (default: the current context) in `path`."""
    path = Path(path)
    config = yaml.safe_load(path.read_text()) or {}
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: not a kubeconfig")
    name = context or config.get("current-context")
    if not name:
        raise ConfigError(f"{path}: no context given and no current-context")
    ctx = _named(config, "contexts", name)
    cluster = _named(config, "clusters", ctx.get("cluster", ""))
    user = _named(config, "users", ctx["user"]) if ctx.get("user") else {}
    server = str(cluster.get("server") or "").rstrip("/")
    if not server:
        raise ConfigError(f"{path}: cluster {ctx.get('cluster')!r} has no server")
    token = user.get("token")
    if not token and user.get("tokenFile"):
        token = _resolve(path.parent, user["tokenFile"]).read_text().strip()
    return ConnectionConfig(server=server, token=token or None,
                            ssl_context=_ssl_context(path.parent, cluster, user),
                            namespace=ctx.get("namespace") or "default")

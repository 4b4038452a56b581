"""podcli, the CLI the real podinfo image ships as /usr/local/bin/podcli; Flagger's and
podinfo's own manifests probe with `podcli check http localhost:9898/healthz`.

Implemented: `check http <address>` (--method, --body, --retry, --delay, --timeout:
2xx and 3xx pass), `check tcp <address>` and `version`. Like podcli, every attempt,
the first included, waits --delay (default 1 s) before it runs, and a failure exits 1.
One deviation: with MKP_POD_IP set (pods of the loopback network share the host's
network namespace, where the app listens on the pod IP), `localhost` and 127.0.0.1
mean the pod IP.
"""

from __future__ import annotations

import os
import socket
import sys
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit, urlunsplit

from .config import UsageError, _duration
from .logger import Logger

USAGE = """Usage:
  podcli [command]

Available Commands:
  check       Health check commands
  version     Prints podcli version
"""


def _pod_local(host: str) -> str:
    pod_ip = os.environ.get("MKP_POD_IP")
    return pod_ip if pod_ip and host in ("localhost", "127.0.0.1") else host


def _options(args: list[str]) -> tuple[list[str], dict[str, str]]:
    positional, options = [], {}
    items = iter(args)
    for arg in items:
        if arg.startswith("--"):
            name, eq, value = arg[2:].partition("=")
            options[name] = value if eq else next(items, "")
        else:
            positional.append(arg)
    return positional, options


def check_http(address: str, options: dict[str, str], logger: Logger) -> int:
    if not address.startswith(("http://", "https://")):
        address = "http://" + address
    parts = urlsplit(address)
    host = _pod_local(parts.hostname or "")
    target = urlunsplit(parts._replace(netloc=host + (f":{parts.port}" if parts.port else "")))
    retries, delay = int(options.get("retry", "0")), _duration(options.get("delay", "1s"))
    timeout = _duration(options.get("timeout", "5s"))
    body = options.get("body", "").encode() or None
    for _ in range(retries + 1):
        time.sleep(delay)
        request = urllib.request.Request(target, data=body, method=options.get("method", "GET"))
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                code, size = response.status, len(response.read())
        except urllib.error.HTTPError as error:
            code, size = error.code, 0
        except (OSError, ValueError) as error:
            logger.info("check failed", address=address, error=str(error))
            continue
        if 200 <= code < 400:
            logger.info("check succeed", address=address, **{"status code": code, "response size": f"{size} B"})
            return 0
        logger.info("check failed", address=address, **{"status code": code})
    return 1


def check_tcp(address: str, options: dict[str, str], logger: Logger) -> int:
    host, _, port = address.rpartition(":")
    retries, delay = int(options.get("retry", "0")), _duration(options.get("delay", "1s"))
    timeout = _duration(options.get("timeout", "5s"))
    for _ in range(retries + 1):
        time.sleep(delay)
        try:
            socket.create_connection((_pod_local(host), int(port)), timeout=timeout).close()
        except (OSError, ValueError) as error:
            logger.info("check failed", address=address, error=str(error))
            continue
        logger.info("check succeed", address=address)
        return 0
    return 1


def main(version: str, argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    logger = Logger("info")
    if args[:1] == ["version"]:
        print(version)
        return 0
    if args[:1] != ["check"] or len(args) < 2 or args[1] not in ("http", "tcp"):
        sys.stderr.write(USAGE)
        return 1
    positional, options = _options(args[2:])
    if not positional:
        sys.stderr.write(f"Error: address is required! example: check {args[1]} localhost:9898\n")
        return 1
    try:
        if args[1] == "http":
            return check_http(positional[0], options, logger)
        return check_tcp(positional[0], options, logger)
    except (UsageError, ValueError) as error:
        sys.stderr.write(f"Error: {error}\n")
        return 1

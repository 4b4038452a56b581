"""The Kubernetes WebSocket channel protocols (exec, attach) over an aiohttp WebSocket.

One WebSocket carries several byte streams. Each message starts with its channel:
0 stdin, 1 stdout, 2 stderr, 3 error, 4 resize. The protocol versions differ in what
they add, and the server answers with the one the client listed first among those it
knows (as k8s.io/apimachinery's wsstream does):

- `channel.k8s.io` (v1), `v2.channel.k8s.io`, `v3.channel.k8s.io`: binary messages; the
  error channel carries a plain message on failure (v3 adds the resize channel).
- `v4.channel.k8s.io`: the error channel carries a `Status` JSON: `Success`, or
  `Failure` with reason `NonZeroExitCode` and a cause `ExitCode` holding the exit code.
- `v5.channel.k8s.io`: v4 plus the close signal: a message `[255, ch]` means the client
  closed its end of channel `ch` (kubectl sends `[255, 0]` at stdin EOF, which is how
  `kubectl cp` ends the tar stream going in).
- `base64.channel.k8s.io`, `v4.base64.channel.k8s.io`: text messages, the channel as an
  ASCII digit and the payload base64-encoded (browsers' old terminals used them).
- no subprotocol at all: binary, v1 semantics.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from aiohttp import WSMsgType, web

STDIN, STDOUT, STDERR, ERROR, RESIZE = 0, 1, 2, 3, 4
CLOSE_SIGNAL = 255

V5 = "v5.channel.k8s.io"
V4 = "v4.channel.k8s.io"
V4_BASE64 = "v4.base64.channel.k8s.io"
V3 = "v3.channel.k8s.io"
V2 = "v2.channel.k8s.io"
V1 = "channel.k8s.io"
V1_BASE64 = "base64.channel.k8s.io"

# Every channel protocol the kubelet speaks, newest first.
PROTOCOLS = (V5, V4, V4_BASE64, V3, V2, V1, V1_BASE64)
_STATUS_JSON = {V5, V4, V4_BASE64}


def offered_protocols(request: web.Request) -> list[str]:
    """The subprotocols a client asked for, in its order of preference."""
    raw = ",".join(request.headers.getall("Sec-WebSocket-Protocol", []))
    return [p.strip() for p in raw.split(",") if p.strip()]


def negotiate(offered: list[str], supported: tuple[str, ...] = PROTOCOLS) -> str | None:
    """The first offered protocol the server supports; "" when the client offered
    none (v1 semantics); None when it offered only unknown ones."""
    if not offered:
        return ""
    return next((p for p in offered if p in supported), None)


@dataclass
class Frame:
    """One decoded client message: data for a channel, or (v5) a channel's close."""

    channel: int
    data: bytes
    closed: bool = False


class ChannelConn:
    """A negotiated channel-protocol WebSocket: encodes outgoing channel data, decodes
    incoming messages."""

    def __init__(self, ws: web.WebSocketResponse, protocol: str) -> None:
        self.ws = ws
        self.protocol = protocol
        self.binary = "base64" not in protocol
        self.status_json = protocol in _STATUS_JSON
        self.close_signal = protocol == V5

    async def send(self, channel: int, data: bytes) -> None:
        if self.ws.closed:
            return
        if self.binary:
            await self.ws.send_bytes(bytes([channel]) + data)
        else:
            await self.ws.send_str(chr(ord("0") + channel) + base64.b64encode(data).decode("ascii"))

    def decode(self, msg: Any) -> Frame | None:
        """A Frame for a data message; None for messages to ignore (empty, malformed)."""
        if msg.type == WSMsgType.BINARY:
            raw: bytes = msg.data
            if not raw:
                return None
            if self.close_signal and raw[0] == CLOSE_SIGNAL:
                return Frame(raw[1], b"", closed=True) if len(raw) == 2 else None
            if self.binary:
                return Frame(raw[0], raw[1:])
            return self._decode_base64(raw.decode("ascii", "replace"))
        if msg.type == WSMsgType.TEXT:
            text: str = msg.data
            if not text:
                return None
            if self.binary:  # a text frame on a binary protocol: its UTF-8 bytes
                raw = text.encode()
                return Frame(raw[0], raw[1:])
            return self._decode_base64(text)
        return None

    @staticmethod
    def _decode_base64(text: str) -> Frame | None:
        channel = ord(text[0]) - ord("0")
        if not 0 <= channel < 10:
            return None
        try:
            return Frame(channel, base64.b64decode(text[1:], validate=False))
        except (binascii.Error, ValueError):
            return None

    async def send_status(self, status: dict[str, Any]) -> None:
        """The final word on the error channel: the Status JSON (v4, v5), or only a
        failure's message (older protocols, which send nothing on success)."""
        if self.status_json:
            await self.send(ERROR, json.dumps(status, separators=(",", ":")).encode())
        elif status.get("status") != "Success":
            await self.send(ERROR, str(status.get("message", "")).encode())


def success_status() -> dict[str, Any]:
    return {"metadata": {}, "status": "Success"}


def exit_code_status(code: int, argv: list[str]) -> dict[str, Any]:
    """What the CRI streaming server reports for a command that exited non-zero."""
    return {"metadata": {}, "status": "Failure",
            "message": f"command terminated with non-zero exit code: error executing command "
                       f"[{' '.join(argv)}], exit code {code}",
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}


def internal_error_status(message: str) -> dict[str, Any]:
    return {"metadata": {}, "status": "Failure", "message": f"Internal error occurred: {message}",
            "reason": "InternalError", "details": {"causes": [{"message": message}]}, "code": 500}

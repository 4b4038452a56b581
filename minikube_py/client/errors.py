"""`ApiError`: a Kubernetes `Status` the API server answered with, as an exception.

The server reports every failure as a `Status` object (code, reason, message, details);
a watch reports one inside an `ERROR` event. The client raises exactly that object,
unchanged, so callers ask the same questions client-go's `apierrors` answers
(`IsNotFound`, `IsConflict`, `IsAlreadyExists`, `IsGone`/`IsResourceExpired`) and log
the server's own words. A response that is not a Status (a proxy's HTML error page)
is wrapped in a synthetic one with the HTTP code, as client-go does.

Transport failures (connection refused, reset) are not ApiErrors: they surface as
`aiohttp.ClientError` / `OSError`, since there was no answer from the server at all.
"""

from __future__ import annotations

from typing import Any

_REASONS_BY_CODE = {
    400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
    406: "NotAcceptable", 409: "Conflict", 410: "Gone", 415: "UnsupportedMediaType", 422: "Invalid",
    429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout",
}


class ApiError(Exception):
    """A failed API call, carrying the server's `Status`."""

    def __init__(self, status: dict[str, Any]) -> None:
        self.status = status
        super().__init__(f"{self.code} {self.reason}: {self.message}")

    @classmethod
    def from_response(cls, code: int, body: Any) -> ApiError:
        """The Status in a response body, or one made up from the HTTP code."""
        if isinstance(body, dict) and body.get("kind") == "Status":
            status = dict(body)
            status.setdefault("code", code)
            return cls(status)
        text = body.decode(errors="replace") if isinstance(body, bytes | bytearray) else str(body or "")
        reason = _REASONS_BY_CODE.get(code, "Unknown")
        message = text.strip()[:1000] or f"the server responded with HTTP {code}"
        return cls({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": message, "reason": reason, "code": code})

    @property
    def code(self) -> int:
        return int(self.status.get("code") or 0)

    @property
    def reason(self) -> str:
        return str(self.status.get("reason") or "")

    @property
    def message(self) -> str:
        return str(self.status.get("message") or "")

    @property
    def details(self) -> dict[str, Any]:
        return dict(self.status.get("details") or {})

    @property
    def retry_after_seconds(self) -> int | None:
        value = self.details.get("retryAfterSeconds")
        return int(value) if value else None

    def is_not_found(self) -> bool:
        return self.reason == "NotFound" or (self.code == 404 and not self.reason)

    def is_conflict(self) -> bool:
        return self.reason == "Conflict" or (self.code == 409 and self.reason != "AlreadyExists")

    def is_already_exists(self) -> bool:
        return self.reason == "AlreadyExists"

    def is_gone(self) -> bool:
        """410: the resourceVersion (or continue token) is older than the server keeps."""
        return self.code == 410 or self.reason in ("Gone", "Expired")

    def is_invalid(self) -> bool:
        return self.reason == "Invalid" or self.code == 422

    def is_too_many_requests(self) -> bool:
        return self.reason == "TooManyRequests" or self.code == 429


def is_not_found(exc: BaseException) -> bool:
    """True for an ApiError that is a 404 NotFound (handy in `except Exception`)."""
    return isinstance(exc, ApiError) and exc.is_not_found()


def is_conflict(exc: BaseException) -> bool:
    return isinstance(exc, ApiError) and exc.is_conflict()


def is_already_exists(exc: BaseException) -> bool:
    return isinstance(exc, ApiError) and exc.is_already_exists()


def is_gone(exc: BaseException) -> bool:
    return isinstance(exc, ApiError) and exc.is_gone()

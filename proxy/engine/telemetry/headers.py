"""A read-only str view of the engine's header lists, for telemetry.

The engine keeps headers as `[(name, value)]` byte pairs with lower-cased names
(proxy.engine.headers), in arrival order. The access log and tracing need a handful of
them by name; copying every header into a str dict per request would cost more than the
lookups, so `HeaderView` scans the list on demand and decodes only what is asked for.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

HeaderList = list[tuple[bytes, bytes]]


class HeaderView(Mapping[str, str]):
    """`view.get("user-agent")`: the first value of a (lower-case) header, as str."""

    __slots__ = ("headers",)

    def __init__(self, headers: HeaderList) -> None:
        self.headers = headers

    def get(self, name: str, default: str | None = None) -> str | None:  # type: ignore[override]
        key = name.encode("latin-1")
        for n, v in self.headers:
            if n == key:
                return v.decode("latin-1")
        return default

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = name.encode("latin-1")
        return any(n == key for n, _ in self.headers)

    def __iter__(self) -> Iterator[str]:
        seen: set[bytes] = set()
        for n, _ in self.headers:
            if n not in seen:
                seen.add(n)
                yield n.decode("latin-1")

    def __len__(self) -> int:
        return len({n for n, _ in self.headers})


def set_headers(headers: HeaderList, values: Mapping[str, str], remove: tuple[str, ...] = ()) -> None:
    """Replace (in place) every header named in `values` or `remove`, then append `values`."""
    drop = {n.encode("latin-1") for n in (*values, *remove)}
    headers[:] = [(n, v) for n, v in headers if n not in drop]
    headers.extend((n.encode("latin-1"), v.encode("latin-1")) for n, v in values.items())

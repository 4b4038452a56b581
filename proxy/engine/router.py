"""Route selection: which virtual host and route a request takes, and what the route
decides (cluster, rewrites, redirect, direct response, header mutations, mirrors).

Pure and synchronous: no I/O, no clock. Randomness comes from an injected `rand()`
returning a non-negative integer. As in Envoy, one value is drawn per request and used
both for route runtime_fraction matches and for the weighted-cluster pick (so a counter
makes the weights exact and a seeded `random.Random` makes them reproducible); each
mirror policy with a runtime_fraction draws its own value (Envoy reuses the stream's,
which ties mirroring to the weighted pick; here they are independent).

`Router(config)` compiles a RouteConfiguration once (domain tables, regexes, string
matchers as closures); `Router.route(request)` is then a few dict lookups and the
first-match walk over that virtual host's routes.

Virtual host order is Envoy's: exact domain, then the longest suffix wildcard
(`*.foo.com`), then the longest prefix wildcard (`foo.*`), then `*`. The authority is
lower-cased and tried as given (with its port), then without the port, then, when it
had none, with the downstream port (Istio writes both `reviews` and `reviews:9080`);
`ignore_port_in_host_matching` strips the port always.

Regexes are RE2 in Envoy and Python `re` here (see core.compile_regex); both match the
whole path (query excluded) or header value. Header values with `%COMMAND%` operators
are copied literally: substituting them is the caller's (the formatter's) business.
"""

from __future__ import annotations

import base64
import bisect
import itertools
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from proxy.engine.config.core import (
    DENOMINATORS,
    HeaderMatcher,
    HeaderValueOption,
    QueryParameterMatcher,
    RegexMatchAndSubstitute,
    RuntimeFractionalPercent,
    StringMatcher,
    compile_regex,
)
from proxy.engine.config.errors import ConfigError
from proxy.engine.config.route import (
    ClusterWeight,
    RedirectAction,
    RetryPolicy,
    Route,
    RouteConfiguration,
    VirtualHost,
)

Rand = Callable[[], int]
Headers = Sequence[tuple[str, str]]


def _default_rand() -> int:
    return random.getrandbits(63)


@dataclass(frozen=True, slots=True)
class Request:
    """What routing looks at. `path` includes the query; header names lower-case;
    `port` is the downstream (listener) port; `scheme` is the request's (for redirects)."""

    authority: str
    path: str
    method: str = "GET"
    headers: Headers = ()
    port: int = 0
    scheme: str = "http"


@dataclass(frozen=True, slots=True)
class HeaderMutation:
    """One level's header changes: `remove` first, then `add` (Envoy's order)."""

    remove: tuple[str, ...] = ()
    add: tuple[HeaderValueOption, ...] = ()


@dataclass(slots=True)
class RouteResult:
    """A routing decision. `action` is "cluster", "redirect" or "direct_response".

    For "cluster": `cluster`, `path` (after rewrites, with the query), `host` (the
    rewritten authority, or None to keep it), `auto_host_rewrite`, `timeout` (0: none),
    `retry_policy` (route's, else virtual host's), `mirrors` (clusters to copy to),
    `hash_policy`. For "redirect": `status` and `location`. For "direct_response":
    `status` and `body`. Always: `request_mutations` / `response_mutations` in the
    order to apply them, and `per_filter_config` (most specific level wins per filter).
    Read-only by convention (not frozen: a frozen dataclass costs ~2 us more to build).
    """

    action: str
    route: Route
    virtual_host: VirtualHost
    cluster: str = ""
    path: str = ""
    host: str | None = None
    auto_host_rewrite: bool = False
    timeout: float = 0.0
    idle_timeout: float | None = None
    retry_policy: RetryPolicy | None = None
    mirrors: tuple[str, ...] = ()
    hash_policy: tuple = ()
    status: int = 0
    location: str = ""
    body: bytes = b""
    request_mutations: tuple[HeaderMutation, ...] = ()
    response_mutations: tuple[HeaderMutation, ...] = ()
    per_filter_config: dict[str, Any] = field(default_factory=dict)  # shared: do not mutate


# --- header mutations ---------------------------------------------------------------------

_UNREMOVABLE = frozenset({"host", ":authority", ":path", ":method", ":scheme"})


def apply_header_mutations(headers: list[tuple[str, str]], mutations: Sequence[HeaderMutation]) -> list[tuple[str, str]]:
    """Apply mutations in order to a (lower-case name, value) list; returns the new list.
    Append adds another entry; OVERWRITE replaces every entry of that name; empty
    values are skipped unless keep_empty_value; Host and pseudo-headers are not removed."""
    for m in mutations:
        if m.remove:
            gone = {n.lower() for n in m.remove} - _UNREMOVABLE
            headers = [h for h in headers if h[0] not in gone]
        for opt in m.add:
            key, value = opt.header.key.lower(), opt.header.value
            if not value and not opt.keep_empty_value:
                continue
            action = opt.action
            if action == "APPEND_IF_EXISTS_OR_ADD":
                headers.append((key, value))
                continue
            exists = any(n == key for n, _ in headers)
            if action == "ADD_IF_ABSENT":
                if not exists:
                    headers.append((key, value))
            elif exists or action == "OVERWRITE_IF_EXISTS_OR_ADD":
                headers = [h for h in headers if h[0] != key]
                headers.append((key, value))
    return headers


# --- compiled matchers ---------------------------------------------------------------------


def string_matcher(m: StringMatcher, path: str) -> Callable[[str], bool]:
    if m.safe_regex is not None:
        rx = compile_regex(m.safe_regex.regex, f"{path}.safe_regex.regex")
        return lambda v: rx.fullmatch(v) is not None
    fold = m.ignore_case
    if m.exact is not None:
        want = m.exact.lower() if fold else m.exact
        return (lambda v: v.lower() == want) if fold else (lambda v: v == want)
    if m.prefix is not None:
        want = m.prefix.lower() if fold else m.prefix
        return (lambda v: v.lower().startswith(want)) if fold else (lambda v: v.startswith(want))
    if m.suffix is not None:
        want = m.suffix.lower() if fold else m.suffix
        return (lambda v: v.lower().endswith(want)) if fold else (lambda v: v.endswith(want))
    want = (m.contains or "").lower() if fold else (m.contains or "")
    return (lambda v: want in v.lower()) if fold else (lambda v: want in v)


def header_matcher(h: HeaderMatcher, path: str) -> Callable[[dict[str, str]], bool]:
    """A HeaderMatcher as a predicate over {name: joined values}."""
    name, invert = h.name.lower(), h.invert_match
    if h.present_match is not None or not any(
            getattr(h, f) is not None for f in ("exact_match", "safe_regex_match", "range_match", "prefix_match",
                                                "suffix_match", "contains_match", "string_match")):
        want_present = h.present_match if h.present_match is not None else True
        return lambda hs: ((name in hs) == want_present) != invert
    if h.string_match is not None:
        test = string_matcher(h.string_match, f"{path}.string_match")
    elif h.safe_regex_match is not None:
        test = string_matcher(StringMatcher(safe_regex=h.safe_regex_match), path)
    elif h.range_match is not None:
        lo, hi = h.range_match.start, h.range_match.end

        def test(v: str) -> bool:
            try:
                return lo <= int(v) < hi
            except ValueError:
                return False
    else:
        spec = {"exact_match": "exact", "prefix_match": "prefix", "suffix_match": "suffix",
                "contains_match": "contains"}
        kw = {new: getattr(h, old) for old, new in spec.items() if getattr(h, old) is not None}
        test = string_matcher(StringMatcher(**kw), path)
    empty_ok = h.treat_missing_header_as_empty

    def match(hs: dict[str, str]) -> bool:
        value = hs.get(name)
        if value is None:
            if not empty_ok:
                return False  # a missing header fails a value match, inverted or not
            value = ""
        return test(value) != invert
    return match


def _query_matcher(q: QueryParameterMatcher, path: str) -> Callable[[dict[str, str]], bool]:
    name = q.name
    if q.present_match is not None:
        present = q.present_match
        return lambda qs: name in qs and present
    if q.string_match is None:
        return lambda qs: name in qs
    test = string_matcher(q.string_match, f"{path}.string_match")
    return lambda qs: name in qs and test(qs[name])


def _fraction_hit(fraction: RuntimeFractionalPercent, value: int) -> bool:
    pct = fraction.default_value
    return value % DENOMINATORS[pct.denominator] < pct.numerator


def _re2_substitution(template: str) -> Callable[[Any], str]:
    """RE2's rewrite string (\\0-\\9 groups, \\\\ a backslash) as a re.sub callable."""
    parts: list[str | int] = []
    i, text = 0, []
    while i < len(template):
        c = template[i]
        if c == "\\" and i + 1 < len(template):
            nxt = template[i + 1]
            if nxt.isdigit():
                parts.append("".join(text))
                text = []
                parts.append(int(nxt))
            else:
                text.append(nxt)
            i += 2
            continue
        text.append(c)
        i += 1
    parts.append("".join(text))
    return lambda m: "".join(p if isinstance(p, str) else (m.group(p) or "") for p in parts)


class _Rewrite:
    """A regex_rewrite: every match in the path (query excluded) substituted."""

    def __init__(self, spec: RegexMatchAndSubstitute, path: str) -> None:
        self.rx = compile_regex(spec.pattern.regex, f"{path}.pattern.regex")
        self.sub = _re2_substitution(spec.substitution)

    def __call__(self, p: str) -> str:
        return self.rx.sub(self.sub, p)


class _CompiledRoute:
    __slots__ = ("route", "kind", "value", "fold", "regex", "headers", "queries", "fraction", "rewrite",
                 "redirect_rewrite", "body", "derived", "ends", "total", "path_len")

    def __init__(self, route: Route, path: str) -> None:
        m = route.match
        self.route = route
        self.fold = not m.case_sensitive
        self.regex = None
        if m.safe_regex is not None:
            self.kind, self.value = "regex", ""
            self.regex = compile_regex(m.safe_regex.regex, f"{path}.match.safe_regex.regex")
        else:
            self.kind, self.value = next((k, getattr(m, k)) for k in ("prefix", "path", "path_separated_prefix")
                                         if getattr(m, k) is not None)
            if self.fold:
                self.value = self.value.lower()
        # the per-request path test: one closure per route, no branching on kind/fold
        self.path_len = _path_matcher(self.kind, self.value, self.fold, self.regex)
        self.headers = [header_matcher(h, f"{path}.match.headers[{i}]") for i, h in enumerate(m.headers)]
        self.queries = [_query_matcher(q, f"{path}.match.query_parameters[{i}]")
                        for i, q in enumerate(m.query_parameters)]
        self.fraction = m.runtime_fraction
        act = route.route
        self.rewrite = _Rewrite(act.regex_rewrite, f"{path}.route.regex_rewrite") if act and act.regex_rewrite else None
        red = route.redirect
        self.redirect_rewrite = _Rewrite(red.regex_rewrite, f"{path}.redirect.regex_rewrite") \
            if red and red.regex_rewrite else None
        self.body = _body(route, path)
        # (request mutations, response mutations, per-filter config) per ClusterWeight
        # (by id; None: no weighted pick), filled on first use: they depend only on config
        self.derived: dict[int | None, tuple] = {}
        weights = act.weighted_clusters.clusters if act and act.weighted_clusters else ()
        self.ends = list(itertools.accumulate(c.weight for c in weights))
        self.total = self.ends[-1] if self.ends else 0

    def pick(self, value: int) -> ClusterWeight:
        """pick_weighted with the cumulative weights precomputed."""
        i = bisect.bisect_right(self.ends, value % self.total)
        return self.route.route.weighted_clusters.clusters[i]  # type: ignore[union-attr]

    def match_path(self, p: str) -> int:
        """-1 if the path does not match, else the length of the matched prefix."""
        return self.path_len(p)


def _path_matcher(kind: str, v: str, fold: bool, regex: Any) -> Callable[[str], int]:
    """A route's path match as one closure: -1, or the length of the matched prefix
    (the whole path for a regex). `v` is already lower-cased when `fold`."""
    n = len(v)
    if kind == "regex":
        full = regex.fullmatch
        return lambda p: len(p) if full(p) else -1
    if kind == "prefix":
        if fold:
            return lambda p: n if p.lower().startswith(v) else -1
        return lambda p: n if p.startswith(v) else -1
    if kind == "path":
        if fold:
            return lambda p: n if p.lower() == v else -1
        return lambda p: n if p == v else -1
    sep = v + "/"  # path_separated_prefix: the prefix, then the end or a "/"
    if fold:
        return lambda p: n if (q := p.lower()) == v or q.startswith(sep) else -1
    return lambda p: n if p == v or p.startswith(sep) else -1


def _body(route: Route, path: str) -> bytes:
    dr = route.direct_response
    if dr is None or dr.body is None:
        return b""
    src = dr.body
    if src.inline_string is not None:
        return src.inline_string.encode()
    if src.inline_bytes is not None:
        return base64.b64decode(src.inline_bytes)
    if src.filename is not None:
        try:
            return Path(src.filename).read_bytes()
        except OSError as e:
            raise ConfigError(f"{path}.direct_response.body.filename", f"cannot read: {e.strerror}") from None
    raise ConfigError(f"{path}.direct_response.body", "environment_variable bodies are not supported")


def _split_port(host: str) -> tuple[str, str]:
    """("host", ":port") or (host, "") — IPv6 literals keep their brackets."""
    i = host.rfind(":")
    if i == -1 or host.endswith("]") or (host.startswith("[") and host.rfind("]") > i):
        return host, ""
    if host.count(":") > 1 and not host.startswith("["):
        return host, ""  # a bare IPv6 address, no port
    return host[:i], host[i:]


class _CompiledVirtualHost:
    __slots__ = ("vh", "routes")

    def __init__(self, vh: VirtualHost, path: str) -> None:
        self.vh = vh
        self.routes = [_CompiledRoute(r, f"{path}.routes[{i}]") for i, r in enumerate(vh.routes)]


def header_map(request: Request) -> dict[str, str]:
    """Request headers by lower-case name, repeated ones joined with "," (Envoy's rule),
    plus the pseudo-headers a matcher may name (`:method`, `:authority`, `:path`, `:scheme`)."""
    hs: dict[str, str] = {}
    for name, value in request.headers:
        name = name.lower()
        hs[name] = f"{hs[name]},{value}" if name in hs else value
    hs[":method"] = request.method
    hs[":authority"] = request.authority
    hs[":path"] = request.path
    hs[":scheme"] = request.scheme
    return hs


def _all(preds: list[Callable[[dict[str, str]], bool]], arg: dict[str, str]) -> bool:
    for p in preds:
        if not p(arg):
            return False
    return True


def query_map(query: str) -> dict[str, str]:
    """First value of each parameter, not URL-decoded (as Envoy's route matching)."""
    qs: dict[str, str] = {}
    for part in query.split("&"):
        if part:
            name, _, value = part.partition("=")
            qs.setdefault(name, value)
    return qs


class Router:
    """One RouteConfiguration, compiled. `route(request)` -> RouteResult or None (no
    virtual host or no route: Envoy answers 404 with response flag NR)."""

    def __init__(self, config: RouteConfiguration, *, rand: Rand | None = None) -> None:
        self.config = config
        self.rand: Rand = rand or _default_rand
        self._exact: dict[str, _CompiledVirtualHost] = {}
        suffixes: list[tuple[str, _CompiledVirtualHost]] = []
        prefixes: list[tuple[str, _CompiledVirtualHost]] = []
        self._default: _CompiledVirtualHost | None = None
        for i, vh in enumerate(config.virtual_hosts):
            cvh = _CompiledVirtualHost(vh, f"virtual_hosts[{i}]")
            for domain in vh.domains:
                d = domain.lower()
                if d == "*":
                    self._default = cvh
                elif d.startswith("*"):
                    suffixes.append((d[1:], cvh))
                elif d.endswith("*"):
                    prefixes.append((d[:-1], cvh))
                else:
                    self._exact[d] = cvh
        # longest first; Python's sort is stable, so equal lengths keep config order
        self._suffixes = sorted(suffixes, key=lambda s: -len(s[0]))
        self._prefixes = sorted(prefixes, key=lambda s: -len(s[0]))

    # -- virtual hosts --

    def _candidates(self, authority: str, port: int) -> list[str]:
        host = authority.lower()
        bare, has_port = _split_port(host)
        if self.config.ignore_port_in_host_matching:
            return [bare]
        if has_port:
            return [host, bare]
        return [host, f"{host}:{port}"] if port else [host]

    def _find(self, authority: str, port: int) -> _CompiledVirtualHost | None:
        cvh = self._exact.get(authority)
        if cvh is not None and not self.config.ignore_port_in_host_matching:
            return cvh  # the common case: the authority as written is a domain
        hosts = self._candidates(authority, port)
        for h in hosts:
            if h in self._exact:
                return self._exact[h]
        for h in hosts:
            for suffix, cvh in self._suffixes:
                # a wildcard matches at least one character: "*.foo.com" is not "foo.com"
                if len(h) > len(suffix) and h.endswith(suffix):
                    return cvh
        for h in hosts:
            for prefix, cvh in self._prefixes:
                if len(h) > len(prefix) and h.startswith(prefix):
                    return cvh
        return self._default

    def virtual_host(self, authority: str, port: int = 0) -> VirtualHost | None:
        cvh = self._find(authority, port)
        return cvh.vh if cvh else None

    # -- routes --

    def match(self, request: Request) -> tuple[VirtualHost, Route, int] | None:
        """The virtual host, the first matching route, and the matched prefix length."""
        found = self._match(request)
        return (found[0].vh, found[1].route, found[2]) if found else None

    def _match(self, request: Request) -> tuple[_CompiledVirtualHost, _CompiledRoute, int, int] | None:
        cvh = self._find(request.authority, request.port)
        if cvh is None:
            return None
        value = self.rand()
        p, _, query = request.path.partition("?")
        hs: dict[str, str] | None = None  # built on the first route whose path matched and has header matchers
        qs: dict[str, str] | None = None
        for cr in cvh.routes:
            n = cr.path_len(p)
            if n < 0:
                continue
            if cr.headers:
                if hs is None:
                    hs = header_map(request)
                if not _all(cr.headers, hs):
                    continue
            if cr.queries:
                if qs is None:
                    qs = query_map(query)
                if not _all(cr.queries, qs):
                    continue
            if cr.fraction is not None and not _fraction_hit(cr.fraction, value):
                continue
            return cvh, cr, n, value
        return None

    def route(self, request: Request) -> RouteResult | None:
        found = self._match(request)
        if found is None:
            return None
        cvh, cr, n, value = found
        route, vh = cr.route, cvh.vh
        if route.direct_response is not None:
            _, resp, pfc = self._derived(vh, cr, None)
            return RouteResult("direct_response", route, vh, status=route.direct_response.status, body=cr.body,
                               response_mutations=resp, per_filter_config=pfc)
        if route.redirect is not None:
            _, resp, pfc = self._derived(vh, cr, None)
            status, location = self._redirect(request, route.redirect, cr, n)
            return RouteResult("redirect", route, vh, status=status, location=location, response_mutations=resp,
                               per_filter_config=pfc)
        return self._forward(request, cvh, cr, n, value)

    def _derived(self, vh: VirtualHost, cr: _CompiledRoute, weight: ClusterWeight | None) -> tuple:
        key = id(weight) if weight is not None else None
        found = cr.derived.get(key)
        if found is None:
            found = cr.derived[key] = (self._mutations(vh, cr.route, weight, response=False),
                                       self._mutations(vh, cr.route, weight, response=True),
                                       _per_filter(vh, cr.route, weight))
        return found

    def _forward(self, request: Request, cvh: _CompiledVirtualHost, cr: _CompiledRoute, n: int,
                 value: int) -> RouteResult:
        route, vh = cr.route, cvh.vh
        act = route.route
        assert act is not None
        weight: ClusterWeight | None = None
        if act.weighted_clusters is not None:
            weight = cr.pick(value)
            cluster = weight.name
        elif act.cluster_header is not None:
            cluster = header_map(request).get(act.cluster_header.lower(), "")
        else:
            cluster = act.cluster or ""
        host = None
        if weight is not None and weight.host_rewrite_literal:
            host = weight.host_rewrite_literal
        elif act.host_rewrite_literal:
            host = act.host_rewrite_literal
        elif act.host_rewrite_header:
            host = header_map(request).get(act.host_rewrite_header.lower()) or None
        mirrors = tuple(m.cluster for m in act.request_mirror_policies
                        if m.runtime_fraction is None or _fraction_hit(m.runtime_fraction, self.rand())) \
            if act.request_mirror_policies else ()
        req, resp, pfc = self._derived(vh, cr, weight)
        return RouteResult(
            "cluster", route, vh, cluster=cluster,
            path=_rewrite_path(request.path, cr, n, act.prefix_rewrite, cr.rewrite),
            host=host, auto_host_rewrite=bool(act.auto_host_rewrite), timeout=act.timeout,
            idle_timeout=act.idle_timeout, retry_policy=act.retry_policy or vh.retry_policy, mirrors=mirrors,
            hash_policy=act.hash_policy, request_mutations=req, response_mutations=resp, per_filter_config=pfc)

    def _mutations(self, vh: VirtualHost, route: Route, weight: ClusterWeight | None, *,
                   response: bool) -> tuple[HeaderMutation, ...]:
        """Envoy's order: weighted cluster, route, virtual host, route configuration (so
        an OVERWRITE at the outer level wins), reversed by most_specific_header_mutations_wins."""
        side = "response" if response else "request"
        levels = [lvl for lvl in (weight, route, vh, self.config) if lvl is not None]
        if self.config.most_specific_header_mutations_wins:
            levels.reverse()
        out = []
        for lvl in levels:
            m = HeaderMutation(remove=getattr(lvl, f"{side}_headers_to_remove"), add=getattr(lvl, f"{side}_headers_to_add"))
            if m.remove or m.add:
                out.append(m)
        return tuple(out)

    def _redirect(self, request: Request, red: RedirectAction, cr: _CompiledRoute, n: int) -> tuple[int, str]:
        orig_scheme = request.scheme
        scheme = red.scheme_redirect or ("https" if red.https_redirect else orig_scheme)
        port = f":{red.port_redirect}" if red.port_redirect else ""
        if red.host_redirect:
            host = red.host_redirect
        else:
            host = request.authority
            bare, old_port = _split_port(host)
            if old_port and (port or (scheme != orig_scheme and
                                      (orig_scheme, old_port) in (("http", ":80"), ("https", ":443")))):
                host = bare
        p, sep, query = request.path.partition("?")
        if red.path_redirect is not None:
            new_path, psep, pquery = red.path_redirect.partition("?")
            if psep:
                p, sep, query = new_path, psep, pquery
            else:
                p = new_path
        elif red.prefix_rewrite is not None:
            p = red.prefix_rewrite + p[n:]
        elif cr.redirect_rewrite is not None:
            p = cr.redirect_rewrite(p)
        if red.strip_query:
            sep = query = ""
        return red.status, f"{scheme}://{host}{port}{p}{sep}{query}"


def pick_weighted(clusters: Sequence[ClusterWeight], value: int) -> ClusterWeight:
    """Envoy's pick: `value % total`, then walk the cumulative weights (zero weights
    never chosen). Successive values 0, 1, 2... give the exact split."""
    total = sum(c.weight for c in clusters)
    selected = value % total
    end = 0
    for c in clusters:
        end += c.weight
        if selected < end:
            return c
    raise AssertionError("unreachable: weights were checked to sum > 0")


def _rewrite_path(path: str, cr: _CompiledRoute, n: int, prefix_rewrite: str | None,
                  regex_rewrite: _Rewrite | None) -> str:
    if prefix_rewrite is None and regex_rewrite is None:
        return path
    p, sep, query = path.partition("?")
    p = prefix_rewrite + p[n:] if prefix_rewrite is not None else regex_rewrite(p)  # type: ignore[misc]
    return f"{p}{sep}{query}"


def _per_filter(vh: VirtualHost, route: Route, weight: ClusterWeight | None) -> dict[str, Any]:
    merged = dict(vh.typed_per_filter_config)
    merged.update(route.typed_per_filter_config)
    if weight is not None:
        merged.update(weight.typed_per_filter_config)
    return merged

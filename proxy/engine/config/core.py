"""Envoy's shared building blocks (envoy.config.core.v3, envoy.type.matcher.v3,
envoy.type.v3): addresses, data sources, header mutations, string matchers, percents,
and the TLS transport sockets that both listeners and clusters use."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from proxy.engine.config.errors import ConfigError
from proxy.engine.config.schema import fld

APPEND_ACTIONS = ("APPEND_IF_EXISTS_OR_ADD", "ADD_IF_ABSENT", "OVERWRITE_IF_EXISTS_OR_ADD", "OVERWRITE_IF_EXISTS")
DENOMINATORS = {"HUNDRED": 100, "TEN_THOUSAND": 10_000, "MILLION": 1_000_000}
_HEADER_NAME = re.compile(r"^:?[0-9a-zA-Z!#$%&'*+\-.^_`|~]+$")


def compile_regex(regex: str, path: str) -> re.Pattern[str]:
    """An RE2 pattern as Python `re`. RE2's syntax is nearly a subset of Python's; the
    differences that matter here: RE2 has no backreferences or lookaround (Python
    accepts them, so a config using them works here and fails in Envoy), and RE2's
    `\\C`, `\\pN` one-letter classes and `(?P=name)` differ. Envoy matches the whole
    value, so callers use `fullmatch`."""
    try:
        return re.compile(regex)
    except re.error as e:
        raise ConfigError(path, f"invalid regex {regex!r}: {e}") from None


def check_header_name(name: str, path: str) -> None:
    if not _HEADER_NAME.match(name):
        raise ConfigError(path, f"invalid header name {name!r}")


@dataclass(frozen=True, kw_only=True)
class SocketAddress:
    address: str = fld(required=True)
    port_value: int = fld(0, lo=0, hi=65535)
    protocol: str = fld("TCP", enum=("TCP", "UDP"))
    ipv4_compat: bool = fld(False)

    def is_ip(self) -> bool:
        try:
            ipaddress.ip_address(self.address)
        except ValueError:
            return False
        return True


@dataclass(frozen=True, kw_only=True)
class Address:
    socket_address: SocketAddress = fld(required=True)


@dataclass(frozen=True, kw_only=True)
class DataSource:
    filename: str | None = fld()
    inline_string: str | None = fld()
    inline_bytes: str | None = fld()  # base64, as proto JSON writes bytes
    environment_variable: str | None = fld()
    ONEOFS = (("filename", "inline_string", "inline_bytes", "environment_variable"),)
    REQUIRED_ONEOFS = ONEOFS


@dataclass(frozen=True, kw_only=True)
class HeaderValue:
    key: str = fld(required=True)
    value: str = fld("")

    def check(self, path: str) -> None:
        check_header_name(self.key, f"{path}.key")


@dataclass(frozen=True, kw_only=True)
class HeaderValueOption:
    """A header to add. `append` (deprecated BoolValue) wins when given: true appends,
    false overwrites; otherwise `append_action` (default APPEND_IF_EXISTS_OR_ADD)."""

    header: HeaderValue = fld(required=True)
    append: bool | None = fld()
    append_action: str = fld("APPEND_IF_EXISTS_OR_ADD", enum=APPEND_ACTIONS)
    keep_empty_value: bool = fld(False)
    ONEOFS = (("append", "append_action"),)

    @property
    def action(self) -> str:
        if self.append is not None:
            return "APPEND_IF_EXISTS_OR_ADD" if self.append else "OVERWRITE_IF_EXISTS_OR_ADD"
        return self.append_action


@dataclass(frozen=True, kw_only=True)
class RegexMatcher:
    regex: str = fld(required=True)
    google_re2: dict | None = fld()  # accepted for compatibility; carries nothing we use

    def check(self, path: str) -> None:
        compile_regex(self.regex, f"{path}.regex")


@dataclass(frozen=True, kw_only=True)
class StringMatcher:
    exact: str | None = fld()
    prefix: str | None = fld()
    suffix: str | None = fld()
    contains: str | None = fld()
    safe_regex: RegexMatcher | None = fld()
    ignore_case: bool = fld(False)
    ONEOFS = (("exact", "prefix", "suffix", "contains", "safe_regex"),)
    REQUIRED_ONEOFS = ONEOFS

    def check(self, path: str) -> None:
        for name in ("prefix", "suffix", "contains"):
            if getattr(self, name) == "":
                raise ConfigError(f"{path}.{name}", "may not be empty")


@dataclass(frozen=True, kw_only=True)
class RegexMatchAndSubstitute:
    pattern: RegexMatcher = fld(required=True)
    substitution: str = fld("")


@dataclass(frozen=True, kw_only=True)
class FractionalPercent:
    numerator: int = fld(0, lo=0)
    denominator: str = fld("HUNDRED", enum=tuple(DENOMINATORS))

    @property
    def fraction(self) -> float:
        return min(1.0, self.numerator / DENOMINATORS[self.denominator])


@dataclass(frozen=True, kw_only=True)
class RuntimeFractionalPercent:
    default_value: FractionalPercent = fld(required=True)
    runtime_key: str = fld("")


@dataclass(frozen=True, kw_only=True)
class Percent:
    value: float = fld(0.0, lo=0, hi=100)


@dataclass(frozen=True, kw_only=True)
class TypedExtensionConfig:
    """A named extension with an opaque config we only check the type of."""

    name: str = fld(required=True)
    typed_config: dict | None = fld()


# --- TLS (envoy.extensions.transport_sockets.tls.v3) ---------------------------------

TLS_VERSIONS = ("TLS_AUTO", "TLSv1_0", "TLSv1_1", "TLSv1_2", "TLSv1_3")


@dataclass(frozen=True, kw_only=True)
class TlsParameters:
    tls_minimum_protocol_version: str = fld("TLS_AUTO", enum=TLS_VERSIONS)
    tls_maximum_protocol_version: str = fld("TLS_AUTO", enum=TLS_VERSIONS)
    cipher_suites: tuple[str, ...] = fld(factory=tuple)
    ecdh_curves: tuple[str, ...] = fld(factory=tuple)


@dataclass(frozen=True, kw_only=True)
class TlsCertificate:
    certificate_chain: DataSource = fld(required=True)
    private_key: DataSource = fld(required=True)


@dataclass(frozen=True, kw_only=True)
class SubjectAltNameMatcher:
    san_type: str = fld(required=True, enum=("DNS", "URI", "EMAIL", "IP_ADDRESS", "OTHER_NAME"))
    matcher: StringMatcher = fld(required=True)


@dataclass(frozen=True, kw_only=True)
class CertificateValidationContext:
    trusted_ca: DataSource | None = fld()
    match_typed_subject_alt_names: tuple[SubjectAltNameMatcher, ...] = fld(factory=tuple)
    trust_chain_verification: str = fld("VERIFY_TRUST_CHAIN", enum=("VERIFY_TRUST_CHAIN", "ACCEPT_UNTRUSTED"))


@dataclass(frozen=True, kw_only=True)
class CommonTlsContext:
    tls_params: TlsParameters | None = fld()
    tls_certificates: tuple[TlsCertificate, ...] = fld(factory=tuple)
    validation_context: CertificateValidationContext | None = fld()
    alpn_protocols: tuple[str, ...] = fld(factory=tuple)


@dataclass(frozen=True, kw_only=True)
class UpstreamTlsContext:
    TYPE_URL = "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
    common_tls_context: CommonTlsContext = fld(factory=CommonTlsContext)
    sni: str = fld("")
    allow_renegotiation: bool = fld(False)


@dataclass(frozen=True, kw_only=True)
class DownstreamTlsContext:
    TYPE_URL = "envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"
    common_tls_context: CommonTlsContext = fld(factory=CommonTlsContext)
    require_client_certificate: bool = fld(False)
    require_sni: bool = fld(False)

    def check(self, path: str) -> None:
        if not self.common_tls_context.tls_certificates:
            raise ConfigError(f"{path}.common_tls_context.tls_certificates", "a server TLS context needs a certificate")
        if self.require_client_certificate and (
            self.common_tls_context.validation_context is None
            or self.common_tls_context.validation_context.trusted_ca is None
        ):
            raise ConfigError(
                f"{path}.common_tls_context.validation_context.trusted_ca",
                "require_client_certificate needs a trusted_ca to verify clients with",
            )


@dataclass(frozen=True, kw_only=True)
class RawBuffer:
    TYPE_URL = "envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer"


@dataclass(frozen=True, kw_only=True)
class DownstreamTransportSocket:
    name: str = fld("envoy.transport_sockets.tls")
    typed_config: DownstreamTlsContext | RawBuffer = fld(required=True, any_of=(DownstreamTlsContext, RawBuffer))


@dataclass(frozen=True, kw_only=True)
class UpstreamTransportSocket:
    name: str = fld("envoy.transport_sockets.tls")
    typed_config: UpstreamTlsContext | RawBuffer = fld(required=True, any_of=(UpstreamTlsContext, RawBuffer))


# --- matchers on requests (envoy.config.route.v3) ---------------------------------


@dataclass(frozen=True, kw_only=True)
class Int64Range:
    start: int = fld(required=True)
    end: int = fld(required=True)


@dataclass(frozen=True, kw_only=True)
class HeaderMatcher:
    """One header condition. With no specifier it is a presence match. A missing header
    fails every value match, inverted or not (Envoy's rule); `invert_match` flips a
    present_match either way."""

    name: str = fld(required=True)
    exact_match: str | None = fld()
    safe_regex_match: RegexMatcher | None = fld()
    range_match: Int64Range | None = fld()
    present_match: bool | None = fld()
    prefix_match: str | None = fld()
    suffix_match: str | None = fld()
    contains_match: str | None = fld()
    string_match: StringMatcher | None = fld()
    invert_match: bool = fld(False)
    treat_missing_header_as_empty: bool = fld(False)
    ONEOFS = (("exact_match", "safe_regex_match", "range_match", "present_match", "prefix_match",
               "suffix_match", "contains_match", "string_match"),)

    def check(self, path: str) -> None:
        check_header_name(self.name, f"{path}.name")


@dataclass(frozen=True, kw_only=True)
class QueryParameterMatcher:
    name: str = fld(required=True)
    string_match: StringMatcher | None = fld()
    present_match: bool | None = fld()
    ONEOFS = (("string_match", "present_match"),)

"""A small certificate authority for workload identities (tests now, istiod's CA later).

Istio's CA (istiod, formerly Citadel) signs one certificate per workload whose only
identity is a SPIFFE URI SAN, `spiffe://<trust domain>/ns/<namespace>/sa/<service account>`;
workload certificates live 24 h (`SECRET_TTL`) and are rotated well before expiry; the
self-signed root lives 10 years. Istio's default key is RSA 2048 (ECDSA P-256 only with
`ECC_SIGNATURE_ALGORITHM=ECDSA`); we default to ECDSA P-256 because it is much cheaper to
generate and to handshake with in Python, and offer RSA 2048 for parity (`key_type="rsa"`).

Everything is written as PEM files because Envoy's (and our) TLS contexts read
certificates from files (`certificate_chain`, `private_key`, `trusted_ca`), and file
rotation is how a running proxy learns a new certificate.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

TRUST_DOMAIN = "cluster.local"
WORKLOAD_CERT_TTL = datetime.timedelta(hours=24)  # Istio's SECRET_TTL default
ROOT_CERT_TTL = datetime.timedelta(days=3650)  # Istio's self-signed root: 10 years
# Backdating absorbs small clock skew between the CA and the peers checking the cert.
_BACKDATE = datetime.timedelta(minutes=5)

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def spiffe_id(namespace: str, service_account: str, trust_domain: str = TRUST_DOMAIN) -> str:
    """`spiffe://cluster.local/ns/<namespace>/sa/<service account>`, Istio's identity form."""
    for field, value in (("namespace", namespace), ("service_account", service_account)):
        if not value or "/" in value:
            raise ValueError(f"pki: {field} {value!r} must be a non-empty name without '/'")
    return f"spiffe://{trust_domain}/ns/{namespace}/sa/{service_account}"


def new_private_key(key_type: str = "ec") -> PrivateKey:
    """ECDSA P-256 (`"ec"`, our default) or RSA 2048 (`"rsa"`, Istio's default)."""
    if key_type == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raise ValueError(f"pki: key_type must be 'ec' or 'rsa', not {key_type!r}")


def _key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write atomically (temp file + rename) so a watcher never reads half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


@dataclass(frozen=True)
class IssuedCert:
    """A leaf certificate and its key, PEM encoded; `chain_pem` is leaf + issuer."""

    cert: x509.Certificate
    key: PrivateKey
    chain_pem: bytes
    key_pem: bytes

    def write(self, directory: str | os.PathLike[str], *, prefix: str = "") -> tuple[Path, Path]:
        """Write `<prefix>cert-chain.pem` and `<prefix>key.pem` (Istio's file names); returns
        their paths. The key file is mode 0600."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        chain, key = d / f"{prefix}cert-chain.pem", d / f"{prefix}key.pem"
        # The key first: a watcher that sees the new chain must find the matching key.
        _write(key, self.key_pem, 0o600)
        _write(chain, self.chain_pem, 0o644)
        return chain, key


class CertificateAuthority:
    """A self-signed root that issues workload certificates with SPIFFE URI SANs."""

    def __init__(self, cert: x509.Certificate, key: PrivateKey) -> None:
        self.cert = cert
        self.key = key

    @classmethod
    def create(
        cls,
        *,
        organization: str = TRUST_DOMAIN,
        key_type: str = "ec",
        ttl: datetime.timedelta = ROOT_CERT_TTL,
    ) -> CertificateAuthority:
        """A new self-signed root CA (`O=<organization>`, as istiod's `O=cluster.local`)."""
        key = new_private_key(key_type)
        name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization)])
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(now + ttl)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(cert, key)

    @classmethod
    def load(cls, cert_file: str | os.PathLike[str], key_file: str | os.PathLike[str]) -> CertificateAuthority:
        """Load a CA from PEM files (e.g. a previous `write`)."""
        cert = x509.load_pem_x509_certificate(Path(cert_file).read_bytes())
        key = serialization.load_pem_private_key(Path(key_file).read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            raise ValueError(f"pki: {key_file}: only EC and RSA keys are supported")
        return cls(cert, key)

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def write(self, directory: str | os.PathLike[str]) -> tuple[Path, Path]:
        """Write `root-cert.pem` (Istio's trust bundle name) and `root-key.pem`."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        cert, key = d / "root-cert.pem", d / "root-key.pem"
        _write(key, _key_pem(self.key), 0o600)
        _write(cert, self.cert_pem, 0o644)
        return cert, key

    def issue(
        self,
        *,
        uris: list[str] | tuple[str, ...] = (),
        dns_names: list[str] | tuple[str, ...] = (),
        ips: list[str] | tuple[str, ...] = (),
        ttl: datetime.timedelta = WORKLOAD_CERT_TTL,
        key_type: str = "ec",
        not_before: datetime.datetime | None = None,
    ) -> IssuedCert:
        """A leaf certificate for both TLS server and client use, with the given SANs.

        Istio's workload certificates have an empty subject and the SAN extension marked
        critical (RFC 5280 requires that when the subject is empty)."""
        import ipaddress

        if not uris and not dns_names and not ips:
            raise ValueError("pki: issue needs at least one of uris, dns_names, ips")
        sans: list[x509.GeneralName] = [x509.UniformResourceIdentifier(u) for u in uris]
        sans += [x509.DNSName(d) for d in dns_names]
        sans += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        key = new_private_key(key_type)
        start = not_before or datetime.datetime.now(datetime.UTC) - _BACKDATE
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + _BACKDATE + ttl)
            .add_extension(x509.SubjectAlternativeName(sans), critical=True)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(True, False, True, False, False, False, False, False, False), critical=True
            )
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False
            )
            .sign(self.key, hashes.SHA256())
        )
        chain = cert.public_bytes(serialization.Encoding.PEM) + self.cert_pem
        return IssuedCert(cert, key, chain, _key_pem(key))

    def issue_workload(
        self,
        namespace: str,
        service_account: str,
        *,
        dns_names: list[str] | tuple[str, ...] = (),
        trust_domain: str = TRUST_DOMAIN,
        ttl: datetime.timedelta = WORKLOAD_CERT_TTL,
        key_type: str = "ec",
    ) -> IssuedCert:
        """A workload certificate for `spiffe://<trust domain>/ns/<ns>/sa/<sa>` (+ DNS SANs)."""
        uri = spiffe_id(namespace, service_account, trust_domain)
        return self.issue(uris=[uri], dns_names=dns_names, ttl=ttl, key_type=key_type)

    def sign_csr(
        self,
        csr_pem: bytes,
        *,
        identity: str | None = None,
        ttl: datetime.timedelta = WORKLOAD_CERT_TTL,
    ) -> bytes:
        """Sign a workload's CSR as istiod does for istio-agent; returns the PEM chain.

        The SANs come from the CSR; with `identity` (the caller's authenticated SPIFFE ID)
        the CSR must ask for exactly that URI, so a workload cannot obtain another's."""
        import ipaddress

        try:
            csr = x509.load_pem_x509_csr(csr_pem)
        except ValueError as e:
            raise ValueError(f"pki: csr: not a PEM certificate request: {e}") from e
        if not csr.is_signature_valid:
            raise ValueError("pki: csr: the signature does not match its key")
        try:
            san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            raise ValueError("pki: csr: no subjectAltName extension") from None
        uris = san.get_values_for_type(x509.UniformResourceIdentifier)
        if identity is not None and uris != [identity]:
            raise ValueError(f"pki: csr: asks for {uris}, the caller is {identity}")
        start = datetime.datetime.now(datetime.UTC) - _BACKDATE
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(self.cert.subject)
            .public_key(csr.public_key())  # type: ignore[arg-type]
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + _BACKDATE + ttl)
            .add_extension(x509.SubjectAlternativeName(
                [x509.UniformResourceIdentifier(u) for u in uris]
                + [x509.DNSName(d) for d in san.get_values_for_type(x509.DNSName)]
                + [x509.IPAddress(ipaddress.ip_address(str(i))) for i in san.get_values_for_type(x509.IPAddress)]
            ), critical=True)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False,
            )
            .sign(self.key, hashes.SHA256())
        )
        return cert.public_bytes(serialization.Encoding.PEM) + self.cert_pem


def new_csr(key: PrivateKey, *, uris: list[str] | tuple[str, ...] = (),
            dns_names: list[str] | tuple[str, ...] = ()) -> bytes:
    """A PEM CSR for `key` asking for the given SANs (the agent side of `sign_csr`)."""
    sans: list[x509.GeneralName] = [x509.UniformResourceIdentifier(u) for u in uris]
    sans += [x509.DNSName(d) for d in dns_names]
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .add_extension(x509.SubjectAlternativeName(sans), critical=True)
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM)


def main(argv: list[str] | None = None) -> None:
    """`python -m proxy.engine.pki --out DIR --workload NS/SA [--workload ...]`: a root CA
    (reused if DIR has one) and workload certificates `<ns>.<sa>-cert-chain.pem`/`-key.pem`,
    for benchmarks and manual mTLS setups."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m proxy.engine.pki", description=main.__doc__)
    parser.add_argument("--out", required=True)
    parser.add_argument("--workload", action="append", default=[], metavar="NS/SA")
    parser.add_argument("--dns", action="append", default=[], help="DNS SAN added to every workload")
    parser.add_argument("--key-type", choices=("ec", "rsa"), default="ec")
    args = parser.parse_args(argv)
    out = Path(args.out)
    root, root_key = out / "root-cert.pem", out / "root-key.pem"
    if root.exists() and root_key.exists():
        ca = CertificateAuthority.load(root, root_key)
    else:
        ca = CertificateAuthority.create(key_type=args.key_type)
        ca.write(out)
    for w in args.workload:
        ns, _, sa = w.partition("/")
        issued = ca.issue_workload(ns, sa, dns_names=args.dns, key_type=args.key_type)
        chain, key = issued.write(out, prefix=f"{ns}.{sa}-")
        print(f"{spiffe_id(ns, sa)}: {chain} {key}")
    print(f"trusted_ca: {root}")


if __name__ == "__main__":
    main()

"""The certificates of the simulated database servers: a CA of the simulator's own, and one server
certificate that every server presents.

Clients verify the servers as they verify Aurora with the RDS CA bundle: they trust `ca.pem` (in the data
directory, and served at `GET /_sim/ca.pem`) and check the host name, so `sslmode=verify-full` (libpq) or
`ssl={"ca": ...}` (PyMySQL) works. The server certificate names `localhost`, `127.0.0.1` and `::1`, the
addresses a simulated cluster's endpoint resolves to.

A data directory that already has the files keeps them, so clients that saved the CA keep working after a
restart of the simulator on the same directory.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SERVER_NAMES = ("localhost",)
SERVER_ADDRESSES = ("127.0.0.1", "::1")
VALIDITY = datetime.timedelta(days=3650)


@dataclass(frozen=True)
class TlsFiles:
    """PEM files: the CA certificate (public) and the servers' certificate and private key."""

    ca_certificate: Path
    server_certificate: Path
    server_key: Path


def ensure_certificates(data_dir: Path) -> TlsFiles:
    """The CA and server certificate under `data_dir`, created unless all three files exist."""
    private = data_dir / "tls"
    files = TlsFiles(
        ca_certificate=data_dir / "ca.pem",
        server_certificate=private / "server.pem",
        server_key=private / "server.key",
    )
    if all(path.is_file() for path in (files.ca_certificate, files.server_certificate, files.server_key)):
        return files
    private.mkdir(mode=0o700, parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "aurora-restore simulator CA")])
    ca_certificate = (
        _builder(ca_name, ca_name, ca_key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(certificate_signing=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, SERVER_NAMES[0])])
    alternative_names = [x509.DNSName(name) for name in SERVER_NAMES] + [
        x509.IPAddress(ipaddress.ip_address(address)) for address in SERVER_ADDRESSES
    ]
    server_certificate = (
        _builder(server_name, ca_name, server_key.public_key())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(certificate_signing=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(alternative_names), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(server_key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write(files.server_key, _private_pem(server_key), mode=0o600)
    _write(files.server_certificate, server_certificate.public_bytes(serialization.Encoding.PEM), mode=0o644)
    _write(files.ca_certificate, ca_certificate.public_bytes(serialization.Encoding.PEM), mode=0o644)
    # The CA's key is not kept: nothing else is ever signed with it.
    return files


def _builder(subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + VALIDITY)
    )


def _key_usage(certificate_signing: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=not certificate_signing,
        key_cert_sign=certificate_signing,
        crl_sign=certificate_signing,
        encipher_only=False,
        decipher_only=False,
    )


def _private_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write(path: Path, content: bytes, mode: int) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(descriptor, "wb") as file:
        file.write(content)
    os.chmod(path, mode)

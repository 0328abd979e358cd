"""The keys and certificates of a local control plane, made fresh for every start.

One self-signed CA signs both the apiserver's serving certificate (SANs 127.0.0.1 and localhost) and the admin
client certificate (O=system:masters, the group kube-apiserver lets do anything whatever the authorizer says).
A separate key pair signs and verifies ServiceAccount tokens, which is what makes the TokenRequest API work.
ECDSA P-256 keys: generated in milliseconds, and accepted by Go's TLS and kube-apiserver's token signer.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ADMIN_USER = "aurora-restore-admin"
ADMIN_GROUP = "system:masters"

# Valid from a little in the past (clock skew between tools) for longer than any dev session lasts.
VALIDITY = datetime.timedelta(days=365)
BACKDATE = datetime.timedelta(hours=1)


@dataclass(frozen=True)
class Pki:
    """Paths of the PEM files written by ``write_pki``."""

    ca_cert: Path
    serving_cert: Path
    serving_key: Path
    admin_cert: Path
    admin_key: Path
    service_account_public_key: Path
    service_account_private_key: Path


def write_pki(directory: Path) -> Pki:
    """Write a new CA, serving and admin certificates and a ServiceAccount signing key pair into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = new_key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "aurora-restore-dev-ca")])
    ca_cert = issue_certificate(
        ca_name,
        ca_key,
        issuer_name=ca_name,
        issuer_key=ca_key,
        extensions=[
            (x509.BasicConstraints(ca=True, path_length=0), True),
            (key_usage(cert_sign=True), True),
        ],
    )

    serving_key = new_key()
    serving_cert = issue_certificate(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]),
        serving_key,
        issuer_name=ca_name,
        issuer_key=ca_key,
        extensions=[
            (x509.BasicConstraints(ca=False, path_length=None), True),
            (key_usage(cert_sign=False), True),
            (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False),
            (
                x509.SubjectAlternativeName(
                    [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
                ),
                False,
            ),
        ],
    )

    admin_key = new_key()
    admin_cert = issue_certificate(
        x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, ADMIN_GROUP),
                x509.NameAttribute(NameOID.COMMON_NAME, ADMIN_USER),
            ]
        ),
        admin_key,
        issuer_name=ca_name,
        issuer_key=ca_key,
        extensions=[
            (x509.BasicConstraints(ca=False, path_length=None), True),
            (key_usage(cert_sign=False), True),
            (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False),
        ],
    )

    service_account_key = new_key()
    pki = Pki(
        ca_cert=directory / "ca.crt",
        serving_cert=directory / "apiserver.crt",
        serving_key=directory / "apiserver.key",
        admin_cert=directory / "admin.crt",
        admin_key=directory / "admin.key",
        service_account_public_key=directory / "service-account.pub",
        service_account_private_key=directory / "service-account.key",
    )
    write_certificate(pki.ca_cert, ca_cert)
    write_certificate(pki.serving_cert, serving_cert)
    write_private_key(pki.serving_key, serving_key)
    write_certificate(pki.admin_cert, admin_cert)
    write_private_key(pki.admin_key, admin_key)
    pki.service_account_public_key.write_bytes(
        service_account_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    write_private_key(pki.service_account_private_key, service_account_key)
    return pki


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def issue_certificate(
    subject: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    *,
    issuer_name: x509.Name,
    issuer_key: ec.EllipticCurvePrivateKey,
    extensions: list[tuple[x509.ExtensionType, bool]],
) -> x509.Certificate:
    """Issue a certificate for ``key``'s public half, signed by ``issuer_key`` (the key itself for the CA).

    Both key identifiers are set because strict verifiers (Python 3.13's default) require them.
    """
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(issuer_key, hashes.SHA256())


def key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def write_certificate(path: Path, certificate: x509.Certificate) -> None:
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))


def write_private_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    """Write a key readable by its owner only; PKCS#8, which both Go and Python load."""
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )

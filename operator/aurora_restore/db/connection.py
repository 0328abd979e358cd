"""How the operator reaches a restored database: endpoint, credentials, TLS, and what connection errors mean.

Secret values never leave this module inside an error: every driver message is redacted before it is raised.
"""

from dataclasses import dataclass, field

from ..errors import RetryableError

# How a certificate that does not verify shows in driver errors: OpenSSL's words (through libpq, or Python's ssl
# under PyMySQL) for a chain to no trusted CA or, from Python, a wrong host name; libpq's own host name check.
CERTIFICATE_FAILURES = ("certificate verify failed", "does not match host name")


@dataclass(frozen=True)
class Tls:
    """TLS to the database: always on. With `ca_file` (the operator passes AURORA_RESTORE_DB_CA_BUNDLE, by default
    the RDS CA bundle of the image) the server's certificate must chain to one of its CAs and name the host
    (libpq sslmode=verify-full; PyMySQL check_hostname and CERT_REQUIRED). Without it, only with
    AURORA_RESTORE_DB_TLS_VERIFY=false: encrypted, but a server impersonating the database goes unnoticed."""

    ca_file: str | None = None

    @property
    def verify(self) -> bool:
        return self.ca_file is not None


@dataclass(frozen=True)
class Timeouts:
    """How long connecting and one statement may take (AURORA_RESTORE_DATABASE_*_TIMEOUT_SECONDS): a database
    that stops answering must not hold a worker thread; the step is retried like any unreachable database."""

    connect: int = 10
    statement: int = 60


@dataclass(frozen=True)
class Endpoint:
    engine: str  # "postgresql" or "mysql"
    host: str
    port: int
    database: str | None
    tls: Tls = Tls()
    timeouts: Timeouts = Timeouts()

    def describe(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)


class AuthenticationFailed(RetryableError):
    """The server answered but refused the credentials (e.g. a new master password not applied yet)."""


def redact(message: str, *secrets: str) -> str:
    """The message with every secret value replaced: driver errors may echo connection parameters."""
    for secret in sorted(filter(None, secrets), key=len, reverse=True):  # longest first: one may contain another
        message = message.replace(secret, "********")
    return message


def unreachable(endpoint: Endpoint, error: Exception, credentials: Credentials) -> RetryableError:
    """A connection that failed before logging in, retried: a database still starting, or one whose certificate
    does not verify, which says so and names the CA bundle, so an operator given the wrong bundle can be told
    from a network problem (after the bundle is fixed and the operator restarted, the restore goes on)."""
    detail = redact(str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__,
                    credentials.password)
    if endpoint.tls.verify and any(words in detail.lower() for words in CERTIFICATE_FAILURES):
        return RetryableError(
            "DatabaseCertificateUnverified",
            f"the TLS certificate of {endpoint.describe()} does not verify against the CA bundle "
            f"{endpoint.tls.ca_file} (AURORA_RESTORE_DB_CA_BUNDLE): {detail}",
        )
    return RetryableError("DatabaseUnreachable", f"cannot connect to {endpoint.describe()}: {detail}")

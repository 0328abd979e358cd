"""How the operator reaches a restored database: endpoint, credentials, TLS, and what connection errors mean.

Secret values never leave this module inside an error: every driver message is redacted before it is raised.
"""

from dataclasses import dataclass, field

from ..errors import RetryableError


@dataclass(frozen=True)
class Tls:
    """TLS to the database: always on; verified against `ca_file` when given (the RDS CA bundle in AWS)."""

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
    detail = redact(str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__,
                    credentials.password)
    return RetryableError("DatabaseUnreachable", f"cannot connect to {endpoint.describe()}: {detail}")

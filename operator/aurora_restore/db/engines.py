"""Which SQL module serves which Aurora engine, and the driver-style URI for connection Secrets."""

from types import ModuleType
from urllib.parse import quote

from ..errors import TerminalError
from . import mysql, postgres

ENGINES: dict[str, ModuleType] = {"aurora-postgresql": postgres, "aurora-mysql": mysql}
URI_SCHEMES = {"aurora-postgresql": "postgresql", "aurora-mysql": "mysql"}


def sql_module(engine: str) -> ModuleType:
    if engine not in ENGINES:
        raise TerminalError("UnsupportedEngine", f"database access is not supported for engine {engine!r}")
    return ENGINES[engine]


def connection_uri(engine: str, host: str, port: int, database: str | None, username: str, password: str) -> str:
    """postgresql://user:pass@host:port/db?sslmode=require or mysql://user:pass@host:port/db, percent-encoded."""
    credentials = f"{quote(username, safe='')}:{quote(password, safe='')}"
    path = f"/{quote(database, safe='')}" if database else ""
    query = "?sslmode=require" if engine == "aurora-postgresql" else "?ssl=true"
    return f"{URI_SCHEMES[engine]}://{credentials}@{host}:{port}{path}{query}"

"""Which SQL module serves which Aurora engine, and the driver-style URI for connection Secrets."""

from types import ModuleType
from urllib.parse import quote

from ..errors import TerminalError
from . import mysql, postgres

ENGINES: dict[str, ModuleType] = {"aurora-postgresql": postgres, "aurora-mysql": mysql}
URI_SCHEMES = {"aurora-postgresql": "postgresql", "aurora-mysql": "mysql"}
# The database user Verifying creates, runs the queries as, and drops (steps/verify.py). Within every engine's
# limits (MySQL: 32 characters); a spec.users[] entry may not take it, or verification would drop that user.
VERIFIER_USER = "aurora_restore_verifier"


def sql_module(engine: str) -> ModuleType:
    if engine not in ENGINES:
        raise TerminalError("UnsupportedEngine", f"database access is not supported for engine {engine!r}")
    return ENGINES[engine]


def user_name_problems(engine: str, users) -> list[tuple[str, str]]:
    """(field, message) for every spec.users[i].name the engine cannot take as it is, found before any
    connection (PostgreSQL would cut a long name short without an error), and the verifier's name."""
    module = ENGINES.get(engine)
    if module is None:
        return []
    problems = []
    for index, user in enumerate(users):
        if user.name == VERIFIER_USER:
            problem = f"{VERIFIER_USER!r} is the user the operator creates and drops for verification"
        else:
            problem = module.user_name_problem(user.name)
        if problem:
            problems.append((f"spec.users[{index}].name", f"spec.users[{index}].name: {problem}"))
    return problems


def connection_uri(engine: str, host: str, port: int, database: str | None, username: str, password: str) -> str:
    """postgresql://user:pass@host:port/db?sslmode=require or mysql://user:pass@host:port/db, percent-encoded."""
    credentials = f"{quote(username, safe='')}:{quote(password, safe='')}"
    path = f"/{quote(database, safe='')}" if database else ""
    query = "?sslmode=require" if engine == "aurora-postgresql" else "?ssl=true"
    return f"{URI_SCHEMES[engine]}://{credentials}@{host}:{port}{path}{query}"

"""The verification user's name is reserved, and what the servers answer a query it may not run is told apart.

That the queries really run as that user, that it may only read, and that it is gone after the restore (and after
a kill) is tested on real servers (tests/e2e/test_verification.py); here: the decisions made before and after.
"""

import pymysql
import pytest

from aurora_restore.api.models import DatabaseUser
from aurora_restore.db import mysql, postgres
from aurora_restore.db.engines import VERIFIER_USER, user_name_problems
from aurora_restore.steps.verify import query_error

ENGINES = ["aurora-postgresql", "aurora-mysql"]
VERIFIER_PASSWORD = "Zr4nd0m-per-attempt_verifier"
MASTER_PASSWORD = "m4ster-Secret"


class _PgError(Exception):
    def __init__(self, message: str, sqlstate: str):
        super().__init__(message)
        self.sqlstate = sqlstate


def user(name: str) -> DatabaseUser:
    return DatabaseUser.model_validate({"name": name, "passwordSecretRef": {"name": "s", "key": "k"}})


def test_the_verifier_name_fits_every_engine():
    assert mysql.user_name_problem(VERIFIER_USER) is None and postgres.user_name_problem(VERIFIER_USER) is None


@pytest.mark.parametrize("engine", ENGINES)
def test_a_spec_user_may_not_take_the_verifier_name(engine):
    """Verifying drops that user at its end: a spec user of that name would be gone after the restore."""
    problems = user_name_problems(engine, [user("app"), user(VERIFIER_USER)])
    assert problems == [(
        "spec.users[1].name",
        f"spec.users[1].name: '{VERIFIER_USER}' is the user the operator creates and drops for verification",
    )]
    assert user_name_problems(engine, [user(VERIFIER_USER.upper()), user(VERIFIER_USER + "2")]) == []


@pytest.mark.parametrize(
    "module, error",
    [
        (postgres, _PgError("permission denied for table orders", "42501")),
        (mysql, pymysql.err.OperationalError(1227, "Access denied; you need (at least one of) the SUPER privilege")),
        (mysql, pymysql.err.OperationalError(1142, "LOCK command denied to user")),
    ],
)
def test_a_query_refused_by_privilege_says_the_verification_user_may_only_read(module, error):
    assert module.verification_problem(error) == "privilege"
    failure = query_error(module, error, 2, 30, VERIFIER_PASSWORD, MASTER_PASSWORD)
    assert failure.reason == "VerificationQueryRefused"
    assert failure.message.startswith(
        f"spec.verification.queries[2] was refused: the verification user '{VERIFIER_USER}' may only read: ")


@pytest.mark.parametrize("module, error", [
    (postgres, _PgError(f"password {VERIFIER_PASSWORD} or {MASTER_PASSWORD} echoed", "XX000")),
    (mysql, pymysql.err.OperationalError(1105, f"password {VERIFIER_PASSWORD} or {MASTER_PASSWORD} echoed")),
])
def test_neither_password_appears_in_a_query_failure(module, error):
    failure = query_error(module, error, 0, 30, VERIFIER_PASSWORD, MASTER_PASSWORD)
    assert VERIFIER_PASSWORD not in failure.message and MASTER_PASSWORD not in failure.message
    assert "password ******** or ******** echoed" in failure.message


def test_a_role_that_still_holds_privileges_is_a_refusal_not_a_retry():
    """DROP ROLE of a leftover verifier that someone gave privileges the master cannot revoke gives 2BP01 every
    time: the restore fails with the server's words instead of retrying until spec.timeout."""
    assert postgres.is_deterministic(_PgError('role "aurora_restore_verifier" cannot be dropped', "2BP01"))
    assert not postgres.is_deterministic(_PgError("terminating connection", "57P01"))

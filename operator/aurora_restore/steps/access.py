"""ConfiguringAccess: the master password and the database users, so applications can log in.

The password values are read when needed (Kubernetes Secret or Secrets Manager) and never stored in status,
events, logs or error messages.
"""

import json
from dataclasses import dataclass
from typing import Any

from ..api.models import UserStatus
from ..api.phase import Phase
from ..aws.rds import AVAILABLE, FAILED_STATUSES
from ..db.connection import AuthenticationFailed, Credentials, Endpoint, redact
from ..db.engines import sql_module, user_name_problems
from ..errors import RetryableError, TerminalError
from .cluster import broken_left, taken
from .context import RestoreContext
from .outcomes import Advance, Outcome, Wait
from .rds_statuses import status_failure
from .route import next_phase


class Missing(Exception):
    """A dependency that may still arrive (a Secret applied later by GitOps): wait, do not fail."""


@dataclass
class MasterAccess:
    """How to reach the restored database as its master user."""

    endpoint: Endpoint
    credentials: Credentials
    secret_arn: str | None = None


def configure_access(ctx: RestoreContext) -> Outcome:
    """Set the master password (ModifyDBCluster) until it really works, then create or update every user.

    Runs after CreatingInstances when the spec asks for any database access; otherwise passes straight on.
    With spec.masking the users are left to Masking, so none can log in before the data is masked.
    Waits (never fails) for a Secret that does not exist yet; fails when the cluster or an instance is in a
    failure status (restored_cluster). Next: Masking, RunningHooks or Verifying (steps/route.py).
    """
    if not ctx.spec.needs_database_access:
        return Advance(next_phase(ctx, Phase.CONFIGURING_ACCESS), "no database access requested")
    cluster = restored_cluster(ctx)
    try:
        access = master_access(ctx, cluster)
    except Missing as missing:
        return Wait(str(missing))
    updates: dict[str, Any] = {"master_user_secret_arn": access.secret_arn}

    module = sql_module(cluster["Engine"])
    problems = user_name_problems(cluster["Engine"], ctx.spec.users)
    if problems:
        raise TerminalError("InvalidUserName", "; ".join(message for _, message in problems))
    try:
        module.connect(access.endpoint, access.credentials).close()
    except AuthenticationFailed:
        if ctx.spec.master_password.manage_in_secrets_manager:
            return Wait("waiting for RDS to apply the password it manages in Secrets Manager", updates=updates)
        if cluster.get("Status") == AVAILABLE:
            ctx.target.rds.modify_cluster(cluster["DBClusterIdentifier"], MasterUserPassword=access.credentials.password)
        return Wait(f"setting the master password of cluster {cluster['DBClusterIdentifier']}", updates=updates)

    if ctx.spec.masking is not None:  # nothing is exposed before the data is masked: Masking configures the users
        return Advance(next_phase(ctx, Phase.CONFIGURING_ACCESS),
                       "master password configured; the users follow masking", updates=updates)
    try:
        users = [configure_user(ctx, access, module, user, index) for index, user in enumerate(ctx.spec.users)]
    except Missing as missing:
        return Wait(str(missing), updates=updates)
    updates["users"] = users
    detail = f" and {len(users)} user(s)" if users else ""
    return Advance(next_phase(ctx, Phase.CONFIGURING_ACCESS), f"master password{detail} configured", updates=updates)


def restored_cluster(ctx: RestoreContext) -> dict[str, Any]:
    """The restored cluster as AWS describes it now (under its temporary name before a swap), once its instances
    are known to be sound. It vanishing mid-restore is terminal, and so is a cluster of that name without the
    restore's UID tag (TargetTaken: passwords, masking and hooks never touch it), or the cluster or one of its
    instances in a failure status (steps/rds_statuses.py: say, inaccessible-encryption-credentials after a KMS key
    was disabled, or incompatible-parameters after a restart), which no waiting cures."""
    identifier = ctx.cluster_identifier
    cluster = ctx.target.rds.describe_cluster(identifier)
    if cluster is None:
        raise TerminalError(
            "ClusterNotFound", f"restored cluster {identifier!r} no longer exists in {ctx.spec.target_region}"
        )
    if not ctx.owns(cluster):
        raise taken(ctx, identifier)
    if cluster.get("Status") in FAILED_STATUSES:
        raise status_failure("cluster", identifier, cluster["Status"], broken_left(ctx), cluster.get("KmsKeyId"))
    for instance in ctx.target.rds.list_cluster_instances(identifier):
        if instance.get("DBInstanceStatus") in FAILED_STATUSES:
            raise status_failure("instance", instance["DBInstanceIdentifier"], instance["DBInstanceStatus"],
                                 broken_left(ctx), cluster.get("KmsKeyId"))
    return cluster


def master_access(ctx: RestoreContext, cluster: dict[str, Any]) -> MasterAccess:
    """Endpoint and master credentials from spec.masterPassword; raises Missing while a secret is absent."""
    source = ctx.spec.master_password
    if source is None:
        raise TerminalError(
            "MasterPasswordRequired",
            "spec.masterPassword is required for spec.users, spec.verification, spec.connectionSecret, spec.masking "
            "and spec.hooks: "
            "the restored cluster keeps the source's master password, which the operator does not know",
        )
    username = cluster["MasterUsername"]
    secret_arn = None
    if source.secret_ref is not None:
        ref = source.secret_ref
        password = ctx.secrets.read_key(ref.name, ref.key, "spec.masterPassword.secretRef")
        if password is None:
            raise Missing(f"waiting for Secret {ctx.namespace}/{ref.name} (spec.masterPassword.secretRef)")
    elif source.secrets_manager_secret_id is not None:
        password = read_secrets_manager_password(
            ctx, source.secrets_manager_secret_id, "spec.masterPassword.secretsManagerSecretId"
        )
    else:
        managed = cluster.get("MasterUserSecret") or {}
        secret_arn = managed.get("SecretArn")
        if not secret_arn:
            if cluster.get("Status") == AVAILABLE:
                ctx.target.rds.modify_cluster(cluster["DBClusterIdentifier"], ManageMasterUserPassword=True)
            raise Missing("waiting for RDS to create the master password in Secrets Manager")
        password = read_secrets_manager_password(
            ctx, secret_arn, "spec.masterPassword.manageInSecretsManager (the secret RDS manages)"
        )
    if secret_arn is None:  # a password the user gave: RDS refuses what breaks its rules, so say which field
        problem = master_password_problem(password)
        if problem:
            field = "spec.masterPassword.secretRef" if source.secret_ref else "spec.masterPassword.secretsManagerSecretId"
            raise TerminalError("InvalidMasterPassword", f"{field}: {problem}")
    return MasterAccess(endpoint=endpoint_of(ctx, cluster), credentials=Credentials(username, password),
                        secret_arn=secret_arn)


def master_password_problem(password: str) -> str | None:
    """What RDS would refuse in a master password, said without the password (RDS API reference,
    MasterUserPassword: "Must contain from 8 to 41 characters. Can contain any printable ASCII character except
    "/", \""", or "@"."; RDS's own error also names the space)."""
    if not 8 <= len(password) <= 41:
        side = "shorter" if len(password) < 8 else "longer"  # not its length: even that tells of a secret
        return f"RDS takes master passwords of 8 to 41 characters; this one is {side}"
    if not all(33 <= ord(c) < 127 for c in password) or any(c in '/"@' for c in password):
        return "RDS takes printable ASCII characters except '/', '\"', '@' and spaces in a master password"
    return None


def read_secrets_manager_password(ctx: RestoreContext, secret_id: str, field: str) -> str:
    """The "password" of a JSON object secret (the shape RDS and most tools write), else the plain string."""
    value = ctx.target.secrets_manager.get_secret_string(secret_id)
    if value is None:
        raise Missing(f"waiting for Secrets Manager secret {secret_id!r} in {ctx.spec.target_region} ({field})")
    try:
        document = json.loads(value)
    except ValueError:
        document = None
    if isinstance(document, dict):
        password = document.get("password")
        if not isinstance(password, str) or not password:
            raise TerminalError(
                "SecretMalformed", f"{field}: secret {secret_id!r} is a JSON object without a \"password\" string"
            )
        return password
    if not value:
        raise TerminalError("SecretMalformed", f"{field}: secret {secret_id!r} is empty")
    return value


def endpoint_of(ctx: RestoreContext, cluster: dict[str, Any]) -> Endpoint:
    engine = cluster["Engine"]
    return Endpoint(
        engine=engine,
        host=cluster["Endpoint"],
        port=cluster["Port"],
        database=cluster.get("DatabaseName") or sql_module(engine).DEFAULT_DATABASE,
        tls=ctx.db_tls,
        timeouts=ctx.db_timeouts,
    )


def configure_user(ctx: RestoreContext, access: MasterAccess, module, user, index: int) -> UserStatus:
    """Create or update one user and grant exactly its access on each of its databases.

    An error the server gives every time (a name it refuses, a password its policy refuses, a privilege the
    master user lacks) fails the restore naming spec.users[index]; any other is retried."""
    field = f"spec.users[{index}].passwordSecretRef"
    ref = user.password_secret_ref
    password = ctx.secrets.read_key(ref.name, ref.key, field)
    if password is None:
        raise Missing(f"waiting for Secret {ctx.namespace}/{ref.name} ({field})")
    databases = user.databases or [access.endpoint.database]
    if None in databases:
        raise TerminalError(
            "DatabaseRequired",
            f"spec.users[{index}].databases is required: cluster has no default database",
        )
    field = f"spec.users[{index}].name"
    try:
        with module.connect(access.endpoint, access.credentials) as conn:
            module.upsert_user(conn, user.name, password)
        for database in databases:
            field = f"spec.users[{index}].databases ({database!r})"
            with module.connect(access.endpoint, access.credentials, database) as conn:
                module.grant(conn, user.name, user.access, database, access.credentials.username)
    except module.QUERY_ERRORS as error:
        detail = redact(str(error).strip(), password, access.credentials.password)
        if module.is_deterministic(error):
            if getattr(module, "NOT_VALID_PASSWORD", None) in error.args[:1]:
                field = f"spec.users[{index}].passwordSecretRef"
            raise TerminalError(
                "DatabaseRefused", f"{field}: the database refused user {user.name!r}: {detail}"
            ) from None
        raise RetryableError("DatabaseError", f"configuring user {user.name!r}: {detail}") from None
    return UserStatus(name=user.name, access=user.access, databases=databases)

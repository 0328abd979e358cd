"""Master passwords managed in Secrets Manager (ManageMasterUserPassword) whose secret really works.

moto creates the secret that AWS creates (`rds!cluster-<uuid>`, owned by the "rds" service), but with a
fixed value (`{"username": "admin", "password": "P@55w0rd!"}`), and its rotation leaves a current version
without a value. Here the secret holds the cluster's master user name and a generated password, and a
rotation (`RotateMasterUserPassword`) stores a new generated password as the current version. The RDS
extensions (`rds_actions`) set that password on the cluster's database server.
"""

from __future__ import annotations

import json
import secrets
import string
from typing import Any

from moto.rds.models import MasterUserSecret

# AWS's generated passwords avoid '/', '@', '"' and spaces, which RDS refuses in master passwords.
PASSWORD_ALPHABET = string.ascii_letters + string.digits + "!#$%&()*+,-.:;<=>?[]^_{|}~"
PASSWORD_LENGTH = 28


def install() -> None:
    MasterUserSecret._generate_secret_string = _secret_string
    MasterUserSecret.rotate_secret = _rotate_secret


def generate_password() -> str:
    return "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(PASSWORD_LENGTH))


def managed_password(resource: Any) -> str | None:
    """The current password in a cluster's managed secret, or None when its password is not managed."""
    if not getattr(resource, "manage_master_user_password", False):
        return None
    master_secret = getattr(resource, "master_user_secret", None)
    if master_secret is None:
        return None
    current = master_secret.secretsmanager.get_secret_value(master_secret.secret_arn, None, None)
    return json.loads(current["SecretString"])["password"]


def _secret_string(self: MasterUserSecret) -> str:
    return json.dumps({"username": self.resource.master_username, "password": generate_password()})


def _rotate_secret(self: MasterUserSecret) -> None:
    self._status = "rotating"
    self.secretsmanager.put_secret_value(
        secret_id=self.secret_arn,
        secret_string=_secret_string(self),
        secret_binary=None,
        client_request_token=None,
        version_stages=["AWSCURRENT"],
    )

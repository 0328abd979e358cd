"""The rest of an AWS account the operator asks about, in memory: KMS keys, security groups, its own account id.

Each mirrors one gateway (aws/kms.py KmsGateway, aws/ec2.py Ec2Gateway, aws/identity.py AccountOf), belongs to
one FakeCloud (one account) and logs every call in the cloud's shared call log, so "no AWS call at all" covers
these too. None of them changes anything in AWS.
"""

import copy
import functools
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .fake_rds import FakeCloud

AWS_MANAGED_RDS_ALIAS = "alias/aws/rds"


class FakeKms:
    """KmsGateway of one account and region: keys found by key id, key ARN, alias name or alias ARN.

    Every region holds the AWS-managed key of RDS (alias/aws/rds, KeyManager AWS), as an account that has
    encrypted a database does; customer-managed keys exist only once added.
    """

    def __init__(self, region: str, cloud: "FakeCloud"):
        self.region = region
        self.cloud = cloud
        self._keys: dict[str, dict[str, Any]] = {}  # every name a key answers to -> its KeyMetadata
        # Accounts (besides the owner) that a key's policy lets use it, by KeyId ("*": every account).
        self._users: dict[str, set[str]] = {}
        # Accounts that a grant of the key lets use it, by KeyId (CreateGrant's GranteePrincipal).
        self._grantees: dict[str, set[str]] = {}
        self.add_key("aws-rds-managed", manager="AWS", alias=AWS_MANAGED_RDS_ALIAS)

    def key_arn(self, key_id: str) -> str:
        return f"arn:aws:kms:{self.region}:{self.cloud.account_id}:key/{key_id}"

    def alias_arn(self, alias: str) -> str:
        return f"arn:aws:kms:{self.region}:{self.cloud.account_id}:{alias}"

    @property
    def aws_managed_key_arn(self) -> str:
        return self.key_arn("aws-rds-managed")

    def add_key(
        self,
        key_id: str,
        *,
        manager: str = "CUSTOMER",
        alias: str | None = None,
        users: list[str] | None = None,
        grants: list[str] | None = None,
    ) -> dict[str, Any]:
        """A key that exists; `key_id` may be a bare id or a key ARN of this account and region. `users`: other
        accounts its key policy lets use it ("*": every account); `grants`: accounts a grant lets use it."""
        key_id = key_id.rsplit("/", 1)[-1] if key_id.startswith("arn:") else key_id
        metadata = {
            "KeyId": key_id,
            "Arn": self.key_arn(key_id),
            "KeyManager": manager,
            "KeyState": "Enabled",
            "Enabled": True,
        }
        names = [key_id, metadata["Arn"]]
        if alias:
            names += [alias, self.alias_arn(alias)]
        for name in names:
            self._keys[name] = metadata
        self._users[key_id] = set(users or [])
        self._grantees[key_id] = set()
        for account in grants or []:
            self.create_grant(key_id, account)
        return copy.deepcopy(metadata)

    def create_grant(self, key_id: str, grantee_account: str) -> None:
        """A grant of the key (by any name of it) to another account, as CreateGrant with that account's root."""
        self._grantees.setdefault(self._keys[key_id]["KeyId"], set()).add(grantee_account)

    def key_users(self, key_id: str) -> set[str]:
        """The accounts besides the owner that may use a key (by any name of it): through its key policy or a
        grant, either is enough."""
        found = self._keys.get(key_id)
        if found is None:
            return set()
        return self._users.get(found["KeyId"], set()) | self._grantees.get(found["KeyId"], set())

    def find(self, key_id: str) -> dict[str, Any] | None:
        """The key a name refers to, without making a call (for other fakes' checks)."""
        found = self._keys.get(key_id)
        return copy.deepcopy(found) if found is not None else None

    def describe_key(self, key_id: str) -> dict[str, Any] | None:
        """KeyMetadata, or None when this account and region have no such key."""
        self.cloud.record(self.region, "describe_key", {"key_id": key_id})
        return self.find(key_id)


class FakeEc2:
    """Ec2Gateway of one account and region: which security groups exist (none until added)."""

    def __init__(self, region: str, cloud: "FakeCloud"):
        self.region = region
        self.cloud = cloud
        self.security_groups: set[str] = set()

    def add_security_group(self, *group_ids: str) -> None:
        self.security_groups.update(group_ids)

    def missing_security_groups(self, group_ids: list[str]) -> list[str]:
        """One DescribeSecurityGroups per id, as the gateway asks."""
        missing = []
        for group_id in group_ids:
            self.cloud.record(self.region, "missing_security_groups", {"group_id": group_id})
            if group_id not in self.security_groups:
                missing.append(group_id)
        return missing


class FakeIdentity:
    """AccountOf: the account an identity acts in; asks STS GetCallerIdentity once, then remembers."""

    def __init__(self, cloud: "FakeCloud", region: str):
        self.cloud = cloud
        self.region = region

    @functools.cached_property
    def account_id(self) -> str:
        self.cloud.record(self.region, "get_caller_identity", {})
        return self.cloud.account_id

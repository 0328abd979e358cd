"""AWS RAM in memory, for cross-account clones: RamGateway's calls over shares kept per world (all accounts).

A share of a cluster ARN with an account outside the owner's organization makes a PENDING invitation; the account
is ASSOCIATED once it accepts (accounts of one organization are associated at once, with no invitation). RDS of the
other account may then clone the cluster by its ARN (fake_rds.py asks `cluster_shared_with`). Deleting a share ends
it: its status becomes DELETED (RAM keeps listing deleted shares for a while, so the gateway must skip them).
"""

import copy
import itertools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aurora_restore.errors import TerminalError

if TYPE_CHECKING:
    from .fake_rds import FakeCloud

SHARE_IDS = itertools.count(1)


@dataclass
class RamWorld:
    """Every share of one test's world, and which accounts form one organization."""

    shares: dict[str, dict[str, Any]] = field(default_factory=dict)  # ARN -> share (with its associations)
    organization: set[str] = field(default_factory=set)
    gateways: dict[tuple[str, str], "FakeRam"] = field(default_factory=dict)

    def cluster_shared_with(self, cluster_arn: str, account: str) -> bool:
        """Whether a live share associates `cluster_arn` with `account` (what RDS checks for a clone by ARN)."""
        return any(share["status"] == "ACTIVE" and cluster_arn in share["resources"]
                   and share["principals"].get(account) == "ASSOCIATED" for share in self.shares.values())


def ram_world(cloud: "FakeCloud") -> RamWorld:
    world = cloud.world
    if getattr(world, "ram", None) is None:
        world.ram = RamWorld()
    return world.ram


def ram_of(cloud: "FakeCloud", region: str) -> "FakeRam":
    """The RamGateway fake of one account and region (one per world, so every run of a test sees the same)."""
    world = ram_world(cloud)
    key = (cloud.account_id, region)
    if key not in world.gateways:
        world.gateways[key] = FakeRam(cloud, region)
    return world.gateways[key]


class FakeRam:
    """RamGateway (aws/ram.py) of one account and region."""

    def __init__(self, cloud: "FakeCloud", region: str):
        self.cloud = cloud
        self.region = region

    @property
    def world(self) -> RamWorld:
        return ram_world(self.cloud)

    def _record(self, action: str, **params) -> None:
        self.cloud.record(self.region, action, params)

    def _view(self, share: dict[str, Any]) -> dict[str, Any]:
        return {"resourceShareArn": share["arn"], "name": share["name"], "owningAccountId": share["owner"],
                "allowExternalPrincipals": share["external"], "status": share["status"],
                "tags": copy.deepcopy(share["tags"])}

    # --- the owner ------------------------------------------------------------------------------------------------

    def find_share(self, tag_key: str, tag_value: str) -> dict[str, Any] | None:
        self._record("get_resource_shares", tag_key=tag_key, tag_value=tag_value)
        for share in self.world.shares.values():
            if (share["owner"] == self.cloud.account_id and share["status"] not in ("DELETING", "DELETED")
                    and {"key": tag_key, "value": tag_value} in share["tags"]):
                return self._view(share)
        return None

    def create_share(self, name: str, resource_arn: str, principal: str, tags: dict[str, str],
                     client_token: str) -> dict[str, Any]:
        self._record("create_resource_share", name=name, resource_arn=resource_arn, principal=principal,
                     tags=dict(tags), client_token=client_token)
        for share in self.world.shares.values():  # the client token makes a retried create return the same share
            if share["owner"] == self.cloud.account_id and share["token"] == client_token:
                return self._view(share)
        if resource_arn.split(":")[4] != self.cloud.account_id:
            raise TerminalError("OperationNotPermittedException", "only the owner of a resource can share it")
        arn = f"arn:aws:ram:{self.region}:{self.cloud.account_id}:resource-share/share-{next(SHARE_IDS):04d}"
        one_organization = {self.cloud.account_id, principal} <= self.world.organization
        share = {"arn": arn, "name": name, "owner": self.cloud.account_id, "external": True, "status": "ACTIVE",
                 "tags": [{"key": k, "value": v} for k, v in sorted(tags.items())], "token": client_token,
                 "resources": {resource_arn: "ASSOCIATED"},
                 "principals": {principal: "ASSOCIATED" if one_organization else "ASSOCIATING"},
                 "invitations": {} if one_organization else {
                     principal: {"resourceShareInvitationArn": f"{arn}/invitation-{principal}", "status": "PENDING",
                                 "receiverAccountId": principal, "resourceShareArn": arn}}}
        self.world.shares[arn] = share
        return self._view(share)

    def associations(self, share_arn: str, kind: str) -> list[dict[str, Any]]:
        self._record("get_resource_share_associations", share_arn=share_arn, kind=kind)
        share = self.world.shares.get(share_arn)
        if share is None or share["owner"] != self.cloud.account_id:
            return []
        entries = share["principals"] if kind == "PRINCIPAL" else share["resources"]
        return [{"associatedEntity": entity, "status": status, "associationType": kind, "resourceShareArn": share_arn}
                for entity, status in entries.items()]

    def delete_share(self, share_arn: str) -> None:
        self._record("delete_resource_share", share_arn=share_arn)
        share = self.world.shares.get(share_arn)
        if share is not None and share["owner"] == self.cloud.account_id:
            share["status"] = "DELETED"
            share["principals"] = {entity: "DISASSOCIATED" for entity in share["principals"]}

    # --- the account shared with ----------------------------------------------------------------------------------

    def invitations(self, share_arn: str) -> list[dict[str, Any]]:
        self._record("get_resource_share_invitations", share_arn=share_arn)
        share = self.world.shares.get(share_arn)
        invitation = share["invitations"].get(self.cloud.account_id) if share else None
        return [copy.deepcopy(invitation)] if invitation else []

    def accept_invitation(self, invitation_arn: str, client_token: str) -> None:
        """Accepting twice is fine (the gateway lets RAM's AlreadyAccepted pass)."""
        self._record("accept_resource_share_invitation", invitation_arn=invitation_arn, client_token=client_token)
        for share in self.world.shares.values():
            invitation = share["invitations"].get(self.cloud.account_id)
            if invitation and invitation["resourceShareInvitationArn"] == invitation_arn:
                invitation["status"] = "ACCEPTED"
                share["principals"][self.cloud.account_id] = "ASSOCIATED"
                return
        raise TerminalError("ResourceShareInvitationArnNotFoundException", f"{invitation_arn} not found")

"""RamGateway: the AWS Resource Access Manager calls of a cross-account clone, for one identity and region.

The source side shares its cluster with the target account (a resource share tagged with the restore's UID, found
again by that tag), the target side accepts the invitation when the accounts are not in one organization. Lookups
return None or [] for "not found"; every other failure is classified (aws/errors.py).
"""

from typing import Any

from botocore.exceptions import ClientError

from ..errors import TerminalError
from .errors import TRANSPORT_ERRORS, classify, error_code

# RAM's "no such share or invitation" (the ARN names nothing, or something already deleted).
NOT_FOUND_CODES = frozenset({"UnknownResourceException", "ResourceArnNotFoundException"})
# DeleteResourceShare of a share already deleted (a delete whose answer was lost) answers this: it is gone.
ALREADY_DELETED_CODES = frozenset({"InvalidStateTransitionException"})
# Shares in these states are gone or going: a restore looking for its share ignores them. A FAILED share is not
# gone: it is found, so that sharing fails on it (ClusterShareFailed) instead of creating another, and cleanup
# deletes it.
GONE_STATUSES = frozenset({"DELETING", "DELETED"})
ASSOCIATED = "ASSOCIATED"
PENDING = "PENDING"


def tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    """RAM's tag shape: lower-case key and value."""
    return [{"key": key, "value": value} for key, value in sorted(tags.items())]


class RamGateway:
    """The RAM calls the operator makes in one region, through an injectable boto3 client."""

    def __init__(self, client, region: str):
        self.client = client
        self.region = region

    def _call(self, action: str, **params) -> dict[str, Any]:
        try:
            return getattr(self.client, action)(**params)
        except (ClientError, *TRANSPORT_ERRORS) as error:
            raise classify(error, f"ram {action} in {self.region}") from None

    def _all(self, action: str, key: str, **params) -> list[dict[str, Any]]:
        """Every page of a RAM listing (nextToken)."""
        items: list[dict[str, Any]] = []
        while True:
            page = self._call(action, **params)
            items += page.get(key) or []
            token = page.get("nextToken")
            if not token:
                return items
            params["nextToken"] = token

    # --- the source side (the cluster's owner) --------------------------------------------------------------

    def find_share(self, tag_key: str, tag_value: str) -> dict[str, Any] | None:
        """The live resource share this account owns carrying the tag (GetResourceShares resourceOwner SELF,
        tagFilters); None when there is none."""
        shares = self._all("get_resource_shares", "resourceShares", resourceOwner="SELF",
                           tagFilters=[{"tagKey": tag_key, "tagValues": [tag_value]}])
        live = [share for share in shares if share.get("status") not in GONE_STATUSES
                and any(t.get("key") == tag_key and t.get("value") == tag_value for t in share.get("tags") or [])]
        return live[0] if live else None

    def create_share(self, name: str, resource_arn: str, principal: str, tags: dict[str, str],
                     client_token: str) -> dict[str, Any]:
        """CreateResourceShare of one resource with one account; allowExternalPrincipals, so an account outside
        the owner's organization can accept it. `client_token` makes a retried request idempotent."""
        return self._call("create_resource_share", name=name, resourceArns=[resource_arn], principals=[principal],
                          allowExternalPrincipals=True, tags=tag_list(tags), clientToken=client_token)["resourceShare"]

    def associations(self, share_arn: str, kind: str) -> list[dict[str, Any]]:
        """The share's PRINCIPAL or RESOURCE associations (status ASSOCIATING, ASSOCIATED, FAILED, ...)."""
        return self._all("get_resource_share_associations", "resourceShareAssociations",
                         associationType=kind, resourceShareArns=[share_arn])

    def delete_share(self, share_arn: str) -> None:
        """DeleteResourceShare; a share already gone is fine."""
        try:
            self.client.delete_resource_share(resourceShareArn=share_arn)
        except ClientError as error:
            if error_code(error) not in NOT_FOUND_CODES | ALREADY_DELETED_CODES:
                raise classify(error, f"ram delete_resource_share in {self.region}") from None
        except TRANSPORT_ERRORS as error:
            raise classify(error, f"ram delete_resource_share in {self.region}") from None

    # --- the target side (the account the cluster is shared with) ------------------------------------------

    def invitations(self, share_arn: str) -> list[dict[str, Any]]:
        """The invitations to this account for the share (none when both accounts are in one organization with
        sharing enabled: the share is then associated at once)."""
        try:
            return self._all("get_resource_share_invitations", "resourceShareInvitations",
                             resourceShareArns=[share_arn])
        except TerminalError as error:  # a share not visible (yet, or any more) has no invitation
            if error.reason in NOT_FOUND_CODES:
                return []
            raise

    def accept_invitation(self, invitation_arn: str, client_token: str) -> None:
        """AcceptResourceShareInvitation; one accepted already (an answer lost before a crash) is fine."""
        try:
            self.client.accept_resource_share_invitation(resourceShareInvitationArn=invitation_arn,
                                                         clientToken=client_token)
        except ClientError as error:
            if error_code(error) != "ResourceShareInvitationAlreadyAcceptedException":
                raise classify(error, f"ram accept_resource_share_invitation in {self.region}") from None
        except TRANSPORT_ERRORS as error:
            raise classify(error, f"ram accept_resource_share_invitation in {self.region}") from None

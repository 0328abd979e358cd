"""AWS RAM across accounts: resource shares of Aurora clusters, their invitations and associations.

moto's RAM keeps shares per account and stops there: no invitations, no GetResourceShares for
OTHER-ACCOUNTS, associations always ASSOCIATED, and RDS never looks at it. A cross-account clone
needs all of it, so the simulator answers RAM itself (the middleware sends every RAM request here,
never to moto) and RDS asks `ResourceShares.is_shared` whether a cluster of another account may be
described and cloned by the caller.

What RAM does, as the simulator models it (rulebook names in brackets):
  - CreateResourceShare in the cluster owner's account, with the cluster's ARN and account ids as
    principals [ram-share-own-resource, ram-external-principals]. A principal in the owner's
    organization (with sharing enabled, see `join_organization`) is ASSOCIATED at once; any other
    account gets an invitation and stays ASSOCIATING [ram-invitation].
  - The invited account lists it with GetResourceShareInvitations and accepts it
    (AcceptResourceShareInvitation) or rejects it; only then is the association ASSOCIATED and the
    share listed under GetResourceShares(resourceOwner=OTHER-ACCOUNTS).
  - DeleteResourceShare: the share is DELETED and every association DISASSOCIATED; access ends.
    A deleted share stays listed (status DELETED) by GetResourceShares(SELF), as RAM's do for a while.
  - A clientToken makes a retried create, accept, ... return the first answer [ram-client-token].
Shares are regional, as in RAM: a share lives in its region, and so do its invitations.

Only account ids are accepted as principals (not organizations, OUs, IAM roles or service
principals) and only RDS cluster ARNs as resources: what the operator uses. Anything else is
refused with a message saying so, rather than accepted and ignored.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qs

import botocore.session

from . import rulebook
from .arns import RdsArn

def _actions_by_path() -> dict[str, str]:
    """RAM's HTTP paths (rest-json) -> operation names, from botocore's model: every operation is named in the
    request log and fault rules, implemented here or not."""
    model = botocore.session.get_session().get_service_model("ram")
    return {
        model.operation_model(name).http["requestUri"].split("?", 1)[0].rstrip("/").lower(): name
        for name in model.operation_names
    }


RAM_ACTIONS_BY_PATH = _actions_by_path()

#: Operations whose clientToken makes a retry return the first answer.
IDEMPOTENT_ACTIONS = frozenset({
    "CreateResourceShare", "AssociateResourceShare", "DisassociateResourceShare", "DeleteResourceShare",
    "AcceptResourceShareInvitation", "RejectResourceShareInvitation",
})
#: RAM's resource type of an Aurora cluster.
CLUSTER_RESOURCE_TYPE = "rds:Cluster"
_ACCOUNT_ID = re.compile(r"\d{12}")


def ram_action(path: str) -> str | None:
    """The RAM operation of a request path (None for a path RAM does not have)."""
    return RAM_ACTIONS_BY_PATH.get(path.rstrip("/").lower() or "/")


class RamError(Exception):
    """An error RAM answers with (all of RAM's client errors are HTTP 400)."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status

    @classmethod
    def from_violation(cls, violation: rulebook.RuleViolation) -> RamError:
        return cls(violation.code, violation.message, violation.status)


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class Invitation:
    arn: str
    receiver: str
    created: datetime = field(default_factory=_now)
    #: PENDING, ACCEPTED, REJECTED or EXPIRED (the share was deleted before an answer).
    status: str = "PENDING"


@dataclass
class Share:
    arn: str
    name: str
    owner: str
    region: str
    allow_external_principals: bool
    tags: dict[str, str]
    #: Principal account -> association status (ASSOCIATING until an invitation is accepted).
    principals: dict[str, str] = field(default_factory=dict)
    #: Resource ARN -> association status.
    resources: dict[str, str] = field(default_factory=dict)
    #: Principal account -> its invitation (accounts outside the owner's organization only).
    invitations: dict[str, Invitation] = field(default_factory=dict)
    #: Principals added outside the owner's organization.
    external: set[str] = field(default_factory=set)
    status: str = "ACTIVE"
    created: datetime = field(default_factory=_now)
    updated: datetime = field(default_factory=_now)

    def describe(self) -> dict[str, Any]:
        return {
            "resourceShareArn": self.arn,
            "name": self.name,
            "owningAccountId": self.owner,
            "allowExternalPrincipals": self.allow_external_principals,
            "status": self.status,
            "tags": [{"key": key, "value": value} for key, value in self.tags.items()],
            "creationTime": self.created.timestamp(),
            "lastUpdatedTime": self.updated.timestamp(),
            "featureSet": "STANDARD",
        }

    def describe_invitation(self, invitation: Invitation) -> dict[str, Any]:
        return {
            "resourceShareInvitationArn": invitation.arn,
            "resourceShareName": self.name,
            "resourceShareArn": self.arn,
            "senderAccountId": self.owner,
            "receiverAccountId": invitation.receiver,
            "invitationTimestamp": invitation.created.timestamp(),
            "status": invitation.status,
        }


#: Whether a resource ARN names something that exists and that `account` owns in `region`.
ResourceExists = Callable[[str, str, str], bool]
#: Why a resource cannot be shared at all (None: it can).
ResourceRefusal = Callable[[str], "rulebook.RuleViolation | None"]


class ResourceShares:
    """Every account's resource shares of one simulator process, and its organizations."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._shares: list[Share] = []
        self._organizations: list[frozenset[str]] = []
        #: (action, account, region, clientToken) -> (the request's other parameters, the answer).
        self._tokens: dict[tuple[str, str, str, str], tuple[dict[str, Any], dict[str, Any]]] = {}
        #: Set by rds_extensions: whether an RDS cluster ARN exists for its owner, and why it may not be shared.
        self.resource_exists: ResourceExists = lambda _arn, _account, _region: False
        self.resource_refusal: ResourceRefusal = lambda _arn: None

    def reset(self) -> None:
        with self._lock:
            self._shares.clear()
            self._organizations.clear()
            self._tokens.clear()

    def fail_share(self, arn: str) -> dict[str, Any]:
        """Put a share in status FAILED, as RAM reports a share it could not set up (control API): it gives no
        access, stays listed, and can still be deleted."""
        with self._lock:
            share = next((share for share in self._shares if share.arn == arn), None)
            if share is None:
                raise KeyError(arn)
            share.status = "FAILED"
            return share.describe()

    # -- organizations (control API) -------------------------------------------------------

    def join_organization(self, accounts: list[str]) -> None:
        """Put `accounts` in one organization with RAM sharing enabled: no invitation between them."""
        for account in accounts:
            if not _ACCOUNT_ID.fullmatch(str(account)):
                raise ValueError(f"not an account id: {account!r}")
        with self._lock:
            self._organizations.append(frozenset(accounts))

    def organizations(self) -> list[list[str]]:
        with self._lock:
            return [sorted(accounts) for accounts in self._organizations]

    def same_organization(self, one: str, other: str) -> bool:
        with self._lock:
            return any(one in accounts and other in accounts for accounts in self._organizations)

    # -- what RDS asks ---------------------------------------------------------------------

    def is_shared(self, resource_arn: str, account: str, region: str) -> bool:
        """Whether an ACTIVE share of `region` gives `account` (ASSOCIATED) the resource (ASSOCIATED)."""
        with self._lock:
            return any(
                share.status == "ACTIVE"
                and share.region == region
                and share.principals.get(account) == "ASSOCIATED"
                and share.resources.get(resource_arn) == "ASSOCIATED"
                for share in self._shares
            )

    def shares_of(self, account: str) -> list[dict[str, Any]]:
        """Every share an account owns, with principals and resources (the control API's view)."""
        with self._lock:
            return [
                {**share.describe(), "region": share.region, "principals": dict(share.principals),
                 "resources": dict(share.resources),
                 "invitations": {a: i.status for a, i in share.invitations.items()}}
                for share in self._shares
                if share.owner == account
            ]

    # -- the RAM API -------------------------------------------------------------------------

    def handle(self, action: str | None, account: str, region: str, body: dict[str, Any]) -> dict[str, Any]:
        """Answer one RAM operation for `account` in `region`; raises RamError."""
        handler = {
            "CreateResourceShare": self.create_resource_share,
            "GetResourceShares": self.get_resource_shares,
            "GetResourceShareAssociations": self.get_resource_share_associations,
            "GetResourceShareInvitations": self.get_resource_share_invitations,
            "AcceptResourceShareInvitation": self.accept_resource_share_invitation,
            "RejectResourceShareInvitation": self.reject_resource_share_invitation,
            "AssociateResourceShare": self.associate_resource_share,
            "DisassociateResourceShare": self.disassociate_resource_share,
            "DeleteResourceShare": self.delete_resource_share,
            "ListResources": self.list_resources,
        }.get(action or "")
        if handler is None:
            raise RamError(
                "NotImplementedException",
                f"The simulator does not implement RAM operation {action or '(unknown path)'}",
                status=501,
            )
        token = body.get("clientToken")
        with self._lock:
            try:
                if token and action in IDEMPOTENT_ACTIONS:
                    return self._idempotent(action, account, region, body, token, handler)
                return handler(account, region, body)
            except rulebook.RuleViolation as violation:
                raise RamError.from_violation(violation) from None

    def _idempotent(self, action: str, account: str, region: str, body: dict[str, Any], token: str,
                    handler: Callable[[str, str, dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
        """Rule `ram-client-token`: a retried request with the same clientToken gets the first answer (the share's
        or invitation's state of now); the same token with other parameters is refused."""
        key = (action, account, region, token)
        parameters = {name: value for name, value in body.items() if name != "clientToken"}
        earlier = self._tokens.get(key)
        if earlier is not None:
            rulebook.check_client_token(token, same_parameters=earlier[0] == parameters)
            return self._current(earlier[1])
        answer = handler(account, region, body)
        self._tokens[key] = (parameters, answer)
        return answer

    def _current(self, answer: dict[str, Any]) -> dict[str, Any]:
        """An earlier answer with the share or invitation as it is now."""
        if "resourceShare" in answer:
            arn = answer["resourceShare"]["resourceShareArn"]
            share = next(share for share in self._shares if share.arn == arn)
            return {**answer, "resourceShare": share.describe()}
        if "resourceShareInvitation" in answer:
            arn = answer["resourceShareInvitation"]["resourceShareInvitationArn"]
            for share in self._shares:
                for invitation in share.invitations.values():
                    if invitation.arn == arn:
                        return {**answer, "resourceShareInvitation": share.describe_invitation(invitation)}
        return answer

    def create_resource_share(self, account: str, region: str, body: dict[str, Any]) -> dict[str, Any]:
        name = _required(body, "name")
        share = Share(
            arn=f"arn:aws:ram:{region}:{account}:resource-share/{uuid.uuid4()}",
            name=name,
            owner=account,
            region=region,
            allow_external_principals=bool(body.get("allowExternalPrincipals", True)),
            tags=_tags(body.get("tags")),
        )
        self._add(share, body.get("resourceArns") or [], body.get("principals") or [])
        self._shares.append(share)
        return {"resourceShare": share.describe(), "clientToken": body.get("clientToken") or str(uuid.uuid4())}

    def associate_resource_share(self, account: str, region: str, body: dict[str, Any]) -> dict[str, Any]:
        share = self._owned(account, region, _required(body, "resourceShareArn"))
        if share.status != "ACTIVE":
            raise RamError("InvalidStateTransitionException", f"Resource share {share.arn} is {share.status}.")
        resources, principals = body.get("resourceArns") or [], body.get("principals") or []
        self._add(share, resources, principals)
        share.updated = _now()
        return {
            "resourceShareAssociations": [
                self._association(share, entity, kind)
                for kind, entities in (("RESOURCE", resources), ("PRINCIPAL", principals))
                for entity in entities
            ],
            "clientToken": body.get("clientToken") or str(uuid.uuid4()),
        }

    def disassociate_resource_share(self, account: str, region: str, body: dict[str, Any]) -> dict[str, Any]:
        share = self._owned(account, region, _required(body, "resourceShareArn"))
        changed = []
        for kind, table, entities in (
            ("RESOURCE", share.resources, body.get("resourceArns") or []),
            ("PRINCIPAL", share.principals, body.get("principals") or []),
        ):
            for entity in entities:
                if entity not in table:
                    raise RamError("UnknownResourceException", f"{entity} is not associated with {share.arn}.")
                table[entity] = "DISASSOCIATED"
                changed.append(self._association(share, entity, kind))
        share.updated = _now()
        return {"resourceShareAssociations": changed, "clientToken": body.get("clientToken") or str(uuid.uuid4())}

    def _add(self, share: Share, resources: list[str], principals: list[str]) -> None:
        """Validate everything first, then associate: a refused request changes nothing."""
        for resource in resources:
            self._check_resource(share, resource)
        for principal in principals:
            self._check_principal(share, principal)
        for resource in resources:
            share.resources[resource] = "ASSOCIATED"
        for principal in principals:
            if self.same_organization(share.owner, principal):
                share.principals[principal] = "ASSOCIATED"
                continue
            share.external.add(principal)
            if share.principals.get(principal) == "ASSOCIATED":
                continue  # already accepted
            share.principals[principal] = "ASSOCIATING"
            invitation = share.invitations.get(principal)
            if invitation is None or invitation.status != "PENDING":
                share.invitations[principal] = Invitation(
                    arn=f"arn:aws:ram:{share.region}:{share.owner}:resource-share-invitation/{uuid.uuid4()}",
                    receiver=principal,
                )

    def _check_resource(self, share: Share, resource: str) -> None:
        arn = RdsArn.parse(resource) if isinstance(resource, str) else None
        if not isinstance(resource, str) or not resource.startswith("arn:"):
            raise RamError(
                "MalformedArnException",
                f"The specified resource ARN {resource} is not valid. Verify the ARN and try again.",
            )
        if arn is None or arn.resource_type != "cluster":
            raise RamError(
                "InvalidParameterException",
                f"The simulator's RAM shares only Aurora DB clusters (rds:Cluster), not {resource}.",
            )
        try:
            rulebook.check_ram_resource_owned(
                resource,
                owned=arn.account == share.owner
                and arn.region == share.region
                and self.resource_exists(resource, share.owner, share.region),
            )
            refusal = self.resource_refusal(resource)
            if refusal is not None:
                raise refusal
        except rulebook.RuleViolation as violation:
            raise RamError.from_violation(violation) from None

    def _check_principal(self, share: Share, principal: str) -> None:
        if not isinstance(principal, str) or not _ACCOUNT_ID.fullmatch(principal):
            raise RamError(
                "InvalidParameterException",
                f"Principal ID {principal} is malformed or not supported: the simulator's RAM takes 12-digit "
                "account ids only.",
            )
        if principal == share.owner:
            raise RamError(
                "InvalidParameterException", "The resource share owner can't be one of its own principals."
            )
        try:
            rulebook.check_ram_external_principal(
                principal,
                allow_external=share.allow_external_principals,
                same_organization=self.same_organization(share.owner, principal),
            )
        except rulebook.RuleViolation as violation:
            raise RamError.from_violation(violation) from None

    def get_resource_shares(self, account: str, region: str, body: dict[str, Any]) -> dict[str, Any]:
        owner = body.get("resourceOwner")
        if owner not in ("SELF", "OTHER-ACCOUNTS"):
            raise RamError(
                "InvalidParameterException",
                f"{owner} is not a valid resource owner. Specify either SELF or OTHER-ACCOUNTS and try again.",
            )
        shares = [
            share
            for share in self._shares
            if share.region == region
            and (
                share.owner == account
                if owner == "SELF"
                else share.owner != account and share.status == "ACTIVE"
                and share.principals.get(account) == "ASSOCIATED"
            )
            and _matches(share, body)
        ]
        page, token = _page([share.describe() for share in shares], body)
        return {"resourceShares": page, **token}

    def get_resource_share_associations(self, account: str, region: str, body: dict[str, Any]) -> dict[str, Any]:
        kind = body.get("associationType")
        if kind not in ("PRINCIPAL", "RESOURCE"):
            raise RamError(
                "InvalidParameterException",
                f"{kind} is not a valid association type. Specify either PRINCIPAL or RESOURCE and try again.",
            )
        if kind == "PRINCIPAL" and body.get("resourceArn"):
            raise RamError(
                "InvalidParameterException", "You cannot specify a resource ARN when the association type is PRINCIPAL."
            )
        if kind == "RESOURCE" and body.get("principal"):
            raise RamError(
                "InvalidParameterException", "You cannot specify a principal when the association type is RESOURCE."
            )
        arns = set(body.get("resourceShareArns") or [])
        entity = body.get("resourceArn") or body.get("principal")
        status = body.get("associationStatus")
        associations = [
            self._association(share, associated, kind)
            for share in self._shares
            if share.owner == account and share.region == region and (not arns or share.arn in arns)
            for associated, associated_status in (share.principals if kind == "PRINCIPAL" else share.resources).items()
            if (entity is None or associated == entity) and (status is None or associated_status == status)
        ]
        page, token = _page(associations, body)
        return {"resourceShareAssociations": page, **token}

    def _association(self, share: Share, entity: str, kind: str) -> dict[str, Any]:
        table = share.principals if kind == "PRINCIPAL" else share.resources
        return {
            "resourceShareArn": share.arn,
            "resourceShareName": share.name,
            "associatedEntity": entity,
            "associationType": kind,
            "status": table.get(entity, "DISASSOCIATED"),
            "creationTime": share.created.timestamp(),
            "lastUpdatedTime": share.updated.timestamp(),
            "external": entity in share.external,
        }

    def get_resource_share_invitations(self, account: str, region: str, body: dict[str, Any]) -> dict[str, Any]:
        invitation_arns = set(body.get("resourceShareInvitationArns") or [])
        share_arns = set(body.get("resourceShareArns") or [])
        invitations = [
            share.describe_invitation(invitation)
            for share in self._shares
            if share.region == region and (not share_arns or share.arn in share_arns)
            for invitation in share.invitations.values()
            if invitation.receiver == account and (not invitation_arns or invitation.arn in invitation_arns)
        ]
        page, token = _page(invitations, body)
        return {"resourceShareInvitations": page, **token}

    def accept_resource_share_invitation(self, account: str, region: str, body: dict[str, Any]) -> dict[str, Any]:
        share, invitation = self._invitation(account, region, _required(body, "resourceShareInvitationArn"))
        if invitation.status == "ACCEPTED":
            raise RamError(
                "ResourceShareInvitationAlreadyAcceptedException",
                f"The invitation {invitation.arn} was already accepted.",
            )
        if invitation.status == "REJECTED":
            raise RamError(
                "ResourceShareInvitationAlreadyRejectedException",
                f"The invitation {invitation.arn} was already rejected.",
            )
        if invitation.status == "EXPIRED":
            raise RamError("ResourceShareInvitationExpiredException", f"The invitation {invitation.arn} expired.")
        invitation.status = "ACCEPTED"
        share.principals[account] = "ASSOCIATED"
        share.updated = _now()
        return {
            "resourceShareInvitation": share.describe_invitation(invitation),
            "clientToken": body.get("clientToken") or str(uuid.uuid4()),
        }

    def reject_resource_share_invitation(self, account: str, region: str, body: dict[str, Any]) -> dict[str, Any]:
        share, invitation = self._invitation(account, region, _required(body, "resourceShareInvitationArn"))
        if invitation.status != "PENDING":
            raise RamError(
                "ResourceShareInvitationAlreadyAcceptedException"
                if invitation.status == "ACCEPTED"
                else "ResourceShareInvitationAlreadyRejectedException",
                f"The invitation {invitation.arn} is {invitation.status}.",
            )
        invitation.status = "REJECTED"
        share.principals[account] = "DISASSOCIATED"
        share.updated = _now()
        return {
            "resourceShareInvitation": share.describe_invitation(invitation),
            "clientToken": body.get("clientToken") or str(uuid.uuid4()),
        }

    def _invitation(self, account: str, region: str, arn: str) -> tuple[Share, Invitation]:
        if not arn.startswith("arn:"):
            raise RamError("MalformedArnException", f"The invitation ARN {arn} is not valid.")
        for share in self._shares:
            for invitation in share.invitations.values():
                if invitation.arn == arn and invitation.receiver == account and share.region == region:
                    return share, invitation
        raise RamError(
            "ResourceShareInvitationArnNotFoundException", f"ResourceShareInvitation {arn} could not be found."
        )

    def delete_resource_share(self, account: str, region: str, body: dict[str, Any]) -> dict[str, Any]:
        share = self._owned(account, region, _required(body, "resourceShareArn"))
        if share.status == "DELETED":  # still listed for a while, as RAM does, but gone for DeleteResourceShare
            raise RamError("UnknownResourceException", f"ResourceShare {share.arn} could not be found.")
        share.status = "DELETED"
        for table in (share.principals, share.resources):
            for entity in table:
                table[entity] = "DISASSOCIATED"
        for invitation in share.invitations.values():
            if invitation.status == "PENDING":
                invitation.status = "EXPIRED"
        share.updated = _now()
        return {"returnValue": True, "clientToken": body.get("clientToken") or str(uuid.uuid4())}

    def _owned(self, account: str, region: str, arn: str) -> Share:
        if not arn.startswith("arn:"):
            raise RamError("MalformedArnException", f"The resource share ARN {arn} is not valid.")
        for share in self._shares:
            if share.arn == arn and share.owner == account and share.region == region:
                return share
        raise RamError("UnknownResourceException", f"ResourceShare {arn} could not be found.")

    def list_resources(self, account: str, region: str, body: dict[str, Any]) -> dict[str, Any]:
        owner = body.get("resourceOwner")
        if owner not in ("SELF", "OTHER-ACCOUNTS"):
            raise RamError(
                "InvalidParameterException",
                f"{owner} is not a valid resource owner. Specify either SELF or OTHER-ACCOUNTS and try again.",
            )
        resource_type = body.get("resourceType")
        wanted_arns = set(body.get("resourceArns") or [])
        share_arns = set(body.get("resourceShareArns") or [])
        principal = body.get("principal")
        resources = []
        for share in self._shares:
            if share.region != region or share.status != "ACTIVE" or (share_arns and share.arn not in share_arns):
                continue
            if owner == "SELF":
                if share.owner != account or (principal and principal not in share.principals):
                    continue
            elif share.owner == account or share.principals.get(account) != "ASSOCIATED":
                continue
            for resource, status in share.resources.items():
                if status != "ASSOCIATED" or (wanted_arns and resource not in wanted_arns):
                    continue
                if resource_type and resource_type.lower() != CLUSTER_RESOURCE_TYPE.lower():
                    continue
                resources.append({
                    "arn": resource,
                    "type": CLUSTER_RESOURCE_TYPE,
                    "resourceShareArn": share.arn,
                    "status": "AVAILABLE",
                    "creationTime": share.created.timestamp(),
                    "lastUpdatedTime": share.updated.timestamp(),
                    "resourceRegionScope": "REGIONAL",
                })
        page, token = _page(resources, body)
        return {"resources": page, **token}


def _required(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise RamError("MissingRequiredParameterException", f"The parameter {name} is required.")
    return value


def _tags(tags: Any) -> dict[str, str]:
    result: dict[str, str] = {}
    for tag in tags or []:
        key = tag.get("key") if isinstance(tag, dict) else None
        if not key:
            raise RamError("InvalidParameterException", f"A tag needs a key: {tag!r}")
        result[key] = tag.get("value") or ""
    return result


def _matches(share: Share, body: dict[str, Any]) -> bool:
    """GetResourceShares' filters: ARNs, status, name and tag filters (each filter must match)."""
    arns = body.get("resourceShareArns")
    if arns and share.arn not in arns:
        return False
    if body.get("resourceShareStatus") and share.status != body["resourceShareStatus"]:
        return False
    if body.get("name") and share.name != body["name"]:
        return False
    for tag_filter in body.get("tagFilters") or []:
        key, values = tag_filter.get("tagKey"), tag_filter.get("tagValues") or []
        if key not in share.tags or (values and share.tags[key] not in values):
            return False
    return True


def _page(items: list[dict[str, Any]], body: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """One page of `items` after nextToken (an offset), at most maxResults long."""
    try:
        start = int(body.get("nextToken") or 0)
    except ValueError:
        raise RamError("InvalidNextTokenException", "The specified value for nextToken isn't valid.") from None
    size = body.get("maxResults") or len(items) or 1
    page = items[start : start + size]
    more = start + size < len(items)
    return page, ({"nextToken": str(start + size)} if more else {})


def parse_qs_first(query: str) -> dict[str, str]:
    """The query string's parameters (DeleteResourceShare sends its resourceShareArn there), first values."""
    return {key: values[0] for key, values in parse_qs(query).items() if values}


def parse_body(raw: bytes) -> dict[str, Any]:
    """A RAM request's JSON body (empty for none)."""
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise RamError("InvalidParameterException", "The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise RamError("InvalidParameterException", "The request body must be a JSON object.")
    return body

"""Aurora clones and RAM shares of clusters in the simulator, checked over HTTP with boto3 as the operator uses them.

A cross-account clone: the owner shares the cluster through RAM (CreateResourceShare), the other account accepts
the invitation (unless both are in one organization), describes the cluster by its ARN and clones it
(RestoreDBClusterToPointInTime, RestoreType=copy-on-write). Each rule of rulebook.py the clones rely on is tested on
both sides: the call it accepts and the call it refuses. Accounts are told apart by the x-moto-account-id header
(what an assumed role's credentials amount to in the simulator). Every test makes its own clusters and accounts'
shares, so tests share the session's simulator.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from aurora_restore_devenv.simulator import SimulatorClient, SimulatorProcess
from aurora_restore_devenv.simulator.databases.binaries import find_postgres
from aurora_restore_devenv.simulator.rulebook import MAX_CROSS_ACCOUNT_CLONES
from tests.aws.conftest import new_account, poll_until, unique

REGION = "us-east-1"
OTHER_REGION = "us-west-2"
ENGINE = "aurora-postgresql"
ENGINE_VERSION = "15.4"
COW = "copy-on-write"


# -- helpers -------------------------------------------------------------------------------------------------------


def rules(*names: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The rulebook rules a case exercises (test_rulebook.py's coverage test reads them, as its own)."""

    def mark(test: Callable[..., Any]) -> Callable[..., Any]:
        test.rules = names  # type: ignore[attr-defined]
        return test

    return mark



wait_until = partial(poll_until, timeout=30.0, interval=0.1)  # this module's patience and pace


def error_code(excinfo: pytest.ExceptionInfo[ClientError]) -> str:
    return excinfo.value.response["Error"]["Code"]


def as_account(client: Any, account: str) -> Any:
    """`client`, acting in `account` (as credentials of a role in that account would)."""
    service = client.meta.service_model.endpoint_prefix
    client.meta.events.register(
        f"before-sign.{service}.*", lambda request, **_: request.headers.add_header("x-moto-account-id", account)
    )
    return client


def cluster(rds: Any, identifier: str) -> dict[str, Any]:
    return rds.describe_db_clusters(DBClusterIdentifier=identifier)["DBClusters"][0]


def available_cluster(rds: Any, instances: int = 1, **kwargs: Any) -> dict[str, Any]:
    """A new cluster, available, with `instances` DB instances (available too)."""
    identifier = unique("source")
    rds.create_db_cluster(
        DBClusterIdentifier=identifier, Engine=ENGINE, EngineVersion=ENGINE_VERSION,
        MasterUsername="postgres", MasterUserPassword="not-a-secret-1", **kwargs,
    )
    for _ in range(instances):
        instance = unique("instance")
        rds.create_db_instance(
            DBInstanceIdentifier=instance, DBClusterIdentifier=identifier, Engine=ENGINE,
            DBInstanceClass="db.r6g.large",
        )
        wait_until(lambda: rds.describe_db_instances(DBInstanceIdentifier=instance)["DBInstances"][0][
            "DBInstanceStatus"] == "available")
    return wait_until(lambda: (found := cluster(rds, identifier))["Status"] == "available" and found)


def share(ram: Any, arn: str, *accounts: str, **kwargs: Any) -> dict[str, Any]:
    return ram.create_resource_share(
        name=unique("share"), resourceArns=[arn], principals=list(accounts), **kwargs
    )["resourceShare"]


def accept(ram: Any, share_arn: str) -> dict[str, Any]:
    invitations = ram.get_resource_share_invitations(resourceShareArns=[share_arn])["resourceShareInvitations"]
    assert [invitation["status"] for invitation in invitations] == ["PENDING"]
    return ram.accept_resource_share_invitation(
        resourceShareInvitationArn=invitations[0]["resourceShareInvitationArn"]
    )["resourceShareInvitation"]


def clone(rds: Any, source: str, **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("RestoreType", COW)
    kwargs.setdefault("UseLatestRestorableTime", True)
    return rds.restore_db_cluster_to_point_in_time(
        DBClusterIdentifier=unique("clone"), SourceDBClusterIdentifier=source, **kwargs
    )["DBCluster"]


class Accounts:
    """The owner's and another account's RDS and RAM clients."""

    def __init__(self, aws_client: Callable[..., Any], region: str = REGION) -> None:
        self.owner, self.target = new_account(), new_account()
        self.owner_rds = as_account(aws_client("rds", region_name=region), self.owner)
        self.owner_ram = as_account(aws_client("ram", region_name=region), self.owner)
        self.owner_kms = as_account(aws_client("kms", region_name=region), self.owner)
        self.target_rds = as_account(aws_client("rds", region_name=region), self.target)
        self.target_ram = as_account(aws_client("ram", region_name=region), self.target)

    def shared_source(self, **kwargs: Any) -> dict[str, Any]:
        """An available cluster with an instance, shared with the target account and accepted there."""
        source = available_cluster(self.owner_rds, **kwargs)
        accept(self.target_ram, share(self.owner_ram, source["DBClusterArn"], self.target)["resourceShareArn"])
        return source


@pytest.fixture
def sim(simulator_client: SimulatorClient) -> Iterator[SimulatorClient]:
    delay = simulator_client.delay()
    simulator_client.set_delay(0)  # these tests are about rules, not transitions
    yield simulator_client
    simulator_client.set_delay(delay)


@pytest.fixture
def accounts(aws_client: Callable[..., Any], sim: SimulatorClient) -> Accounts:
    return Accounts(aws_client)


# -- RAM: shares, invitations, associations ---------------------------------------------------------------------


@rules("ram-invitation", "shared-cluster-visible")
def test_a_share_invites_another_account_which_sees_it_once_accepted(accounts: Accounts) -> None:
    """Rules `ram-invitation` and `shared-cluster-visible`."""
    source = available_cluster(accounts.owner_rds)
    arn = source["DBClusterArn"]
    created = share(accounts.owner_ram, arn, accounts.target, tags=[{"key": "dbrestore.io/uid", "value": "u-1"}])
    assert created["status"] == "ACTIVE" and created["owningAccountId"] == accounts.owner

    principals = accounts.owner_ram.get_resource_share_associations(
        associationType="PRINCIPAL", resourceShareArns=[created["resourceShareArn"]]
    )["resourceShareAssociations"]
    assert [(p["associatedEntity"], p["status"], p["external"]) for p in principals] == [
        (accounts.target, "ASSOCIATING", True)
    ]
    resources = accounts.owner_ram.get_resource_share_associations(
        associationType="RESOURCE", resourceArn=arn
    )["resourceShareAssociations"]
    assert [(r["associatedEntity"], r["status"]) for r in resources] == [(arn, "ASSOCIATED")]

    # Pending: neither listed as a share of another account nor visible to RDS.
    assert accounts.target_ram.get_resource_shares(resourceOwner="OTHER-ACCOUNTS")["resourceShares"] == []
    with pytest.raises(ClientError) as pending:
        cluster(accounts.target_rds, arn)
    assert error_code(pending) == "DBClusterNotFoundFault"

    accepted = accept(accounts.target_ram, created["resourceShareArn"])
    assert accepted["status"] == "ACCEPTED" and accepted["senderAccountId"] == accounts.owner
    with pytest.raises(ClientError) as twice:
        accounts.target_ram.accept_resource_share_invitation(
            resourceShareInvitationArn=accepted["resourceShareInvitationArn"]
        )
    assert error_code(twice) == "ResourceShareInvitationAlreadyAcceptedException"

    others = accounts.target_ram.get_resource_shares(resourceOwner="OTHER-ACCOUNTS")["resourceShares"]
    assert [s["resourceShareArn"] for s in others] == [created["resourceShareArn"]]
    assert accounts.owner_ram.get_resource_share_associations(
        associationType="PRINCIPAL", resourceShareArns=[created["resourceShareArn"]]
    )["resourceShareAssociations"][0]["status"] == "ASSOCIATED"
    seen = cluster(accounts.target_rds, arn)
    assert seen["DBClusterArn"] == arn and seen["Status"] == "available"
    listed = accounts.target_ram.list_resources(resourceOwner="OTHER-ACCOUNTS", resourceType="rds:Cluster")
    assert [(r["arn"], r["type"]) for r in listed["resources"]] == [(arn, "rds:Cluster")]


def test_shares_are_found_by_tag_and_owner(accounts: Accounts) -> None:
    source = available_cluster(accounts.owner_rds)
    uid = unique("uid")
    tagged = share(accounts.owner_ram, source["DBClusterArn"], accounts.target,
                   tags=[{"key": "dbrestore.io/uid", "value": uid}])
    share(accounts.owner_ram, source["DBClusterArn"], new_account())

    found = accounts.owner_ram.get_resource_shares(
        resourceOwner="SELF", tagFilters=[{"tagKey": "dbrestore.io/uid", "tagValues": [uid]}]
    )["resourceShares"]
    assert [s["resourceShareArn"] for s in found] == [tagged["resourceShareArn"]]
    assert found[0]["tags"] == [{"key": "dbrestore.io/uid", "value": uid}]
    assert accounts.owner_ram.get_resource_shares(
        resourceOwner="SELF", tagFilters=[{"tagKey": "dbrestore.io/uid", "tagValues": ["someone-else"]}]
    )["resourceShares"] == []
    # The target account owns no share.
    assert accounts.target_ram.get_resource_shares(resourceOwner="SELF")["resourceShares"] == []
    with pytest.raises(ClientError) as bad_owner:
        accounts.owner_ram.get_resource_shares(resourceOwner="EVERYONE")
    assert error_code(bad_owner) == "InvalidParameterException"


@rules("shared-cluster-visible")
def test_deleting_a_share_ends_access(accounts: Accounts) -> None:
    source = accounts.shared_source()
    arn = source["DBClusterArn"]
    assert cluster(accounts.target_rds, arn)["DBClusterArn"] == arn
    share_arn = accounts.target_ram.get_resource_shares(resourceOwner="OTHER-ACCOUNTS")["resourceShares"][0][
        "resourceShareArn"]

    assert accounts.owner_ram.delete_resource_share(resourceShareArn=share_arn)["returnValue"] is True
    deleted = accounts.owner_ram.get_resource_shares(resourceOwner="SELF", resourceShareArns=[share_arn])
    assert deleted["resourceShares"][0]["status"] == "DELETED"
    assert {a["status"] for a in accounts.owner_ram.get_resource_share_associations(
        associationType="PRINCIPAL", resourceShareArns=[share_arn])["resourceShareAssociations"]} == {"DISASSOCIATED"}
    assert accounts.target_ram.get_resource_shares(resourceOwner="OTHER-ACCOUNTS")["resourceShares"] == []
    with pytest.raises(ClientError) as gone:
        cluster(accounts.target_rds, arn)
    assert error_code(gone) == "DBClusterNotFoundFault"
    with pytest.raises(ClientError) as no_clone:
        clone(accounts.target_rds, arn)
    assert error_code(no_clone) == "DBClusterNotFoundFault"
    with pytest.raises(ClientError) as twice:
        accounts.owner_ram.delete_resource_share(resourceShareArn=share_arn)
    assert error_code(twice) == "UnknownResourceException"
    with pytest.raises(ClientError) as not_the_owner:
        accounts.target_ram.delete_resource_share(resourceShareArn=share_arn)
    assert error_code(not_the_owner) == "UnknownResourceException"


@rules("shared-cluster-visible")
def test_a_failed_share_gives_no_access_and_the_operators_gateway_still_finds_and_deletes_it(
    accounts: Accounts, sim: SimulatorClient
) -> None:
    """A FAILED share is not gone: RamGateway.find_share (what sharing and the cleanup look up by the UID tag)
    returns it, so no second share is made and the cleanup deletes it."""
    from aurora_restore.aws.ram import RamGateway

    source = available_cluster(accounts.owner_rds)
    uid = unique("uid")
    made = share(accounts.owner_ram, source["DBClusterArn"], accounts.target, allowExternalPrincipals=True,
                 tags=[{"key": "dbrestore.io/restore-uid", "value": uid}])
    assert sim.fail_share(made["resourceShareArn"])["status"] == "FAILED"
    assert accounts.target_ram.get_resource_share_invitations(
        resourceShareArns=[made["resourceShareArn"]])["resourceShareInvitations"][0]["status"] == "PENDING"
    with pytest.raises(ClientError) as hidden:
        cluster(accounts.target_rds, source["DBClusterArn"])
    assert error_code(hidden) == "DBClusterNotFoundFault"
    gateway = RamGateway(accounts.owner_ram, REGION)
    found = gateway.find_share("dbrestore.io/restore-uid", uid)
    assert (found["resourceShareArn"], found["status"]) == (made["resourceShareArn"], "FAILED")
    gateway.delete_share(made["resourceShareArn"])
    assert gateway.find_share("dbrestore.io/restore-uid", uid) is None


@rules("ram-invitation")
def test_a_rejected_invitation_gives_no_access(accounts: Accounts) -> None:
    source = available_cluster(accounts.owner_rds)
    created = share(accounts.owner_ram, source["DBClusterArn"], accounts.target)
    invitation = accounts.target_ram.get_resource_share_invitations()["resourceShareInvitations"][0]
    assert invitation["resourceShareArn"] == created["resourceShareArn"]
    rejected = accounts.target_ram.reject_resource_share_invitation(
        resourceShareInvitationArn=invitation["resourceShareInvitationArn"]
    )["resourceShareInvitation"]
    assert rejected["status"] == "REJECTED"
    with pytest.raises(ClientError) as after_reject:
        accounts.target_ram.accept_resource_share_invitation(
            resourceShareInvitationArn=invitation["resourceShareInvitationArn"]
        )
    assert error_code(after_reject) == "ResourceShareInvitationAlreadyRejectedException"
    with pytest.raises(ClientError) as hidden:
        cluster(accounts.target_rds, source["DBClusterArn"])
    assert error_code(hidden) == "DBClusterNotFoundFault"


@rules("ram-invitation")
def test_an_invitation_is_only_the_receivers(accounts: Accounts, aws_client: Callable[..., Any]) -> None:
    source = available_cluster(accounts.owner_rds)
    share(accounts.owner_ram, source["DBClusterArn"], accounts.target)
    invitation = accounts.target_ram.get_resource_share_invitations()["resourceShareInvitations"][0]
    stranger = as_account(aws_client("ram"), new_account())
    assert stranger.get_resource_share_invitations()["resourceShareInvitations"] == []
    with pytest.raises(ClientError) as not_theirs:
        stranger.accept_resource_share_invitation(resourceShareInvitationArn=invitation["resourceShareInvitationArn"])
    assert error_code(not_theirs) == "ResourceShareInvitationArnNotFoundException"


@rules("ram-invitation", "ram-external-principals")
def test_one_organization_needs_no_invitation(accounts: Accounts, sim: SimulatorClient) -> None:
    """Rule `ram-invitation`: within an organization with sharing enabled, the share is associated at once."""
    sim.join_organization(accounts.owner, accounts.target)
    source = available_cluster(accounts.owner_rds)
    created = share(accounts.owner_ram, source["DBClusterArn"], accounts.target, allowExternalPrincipals=False)
    assert accounts.target_ram.get_resource_share_invitations()["resourceShareInvitations"] == []
    association = accounts.owner_ram.get_resource_share_associations(
        associationType="PRINCIPAL", resourceShareArns=[created["resourceShareArn"]]
    )["resourceShareAssociations"][0]
    assert (association["status"], association["external"]) == ("ASSOCIATED", False)
    assert cluster(accounts.target_rds, source["DBClusterArn"])["DBClusterArn"] == source["DBClusterArn"]


@rules("ram-external-principals")
def test_external_principals_need_allow_external_principals(accounts: Accounts) -> None:
    """Rule `ram-external-principals`."""
    source = available_cluster(accounts.owner_rds)
    with pytest.raises(ClientError) as refused:
        share(accounts.owner_ram, source["DBClusterArn"], accounts.target, allowExternalPrincipals=False)
    assert error_code(refused) == "OperationNotPermittedException"
    assert share(accounts.owner_ram, source["DBClusterArn"], accounts.target, allowExternalPrincipals=True)


@rules("ram-share-own-resource")
def test_only_own_existing_clusters_are_shared(accounts: Accounts, aws_client: Callable[..., Any]) -> None:
    """Rule `ram-share-own-resource`."""
    source = available_cluster(accounts.owner_rds)
    missing = source["DBClusterArn"].rsplit(":", 1)[0] + ":" + unique("missing")
    with pytest.raises(ClientError) as not_there:
        share(accounts.owner_ram, missing, accounts.target)
    assert error_code(not_there) == "UnknownResourceException"
    with pytest.raises(ClientError) as not_theirs:
        share(accounts.target_ram, source["DBClusterArn"], new_account())
    assert error_code(not_theirs) == "UnknownResourceException"
    other_region = as_account(aws_client("ram", region_name=OTHER_REGION), accounts.owner)
    with pytest.raises(ClientError) as wrong_region:
        share(other_region, source["DBClusterArn"], accounts.target)
    assert error_code(wrong_region) == "UnknownResourceException"
    with pytest.raises(ClientError) as malformed:
        share(accounts.owner_ram, "cluster-name", accounts.target)
    assert error_code(malformed) == "MalformedArnException"
    assert accounts.owner_ram.get_resource_shares(resourceOwner="SELF", resourceShareArns=[
        share(accounts.owner_ram, source["DBClusterArn"], accounts.target)["resourceShareArn"]
    ])["resourceShares"][0]["status"] == "ACTIVE"


def test_shares_come_in_pages_and_take_more_principals(accounts: Accounts) -> None:
    source = available_cluster(accounts.owner_rds)
    created = [share(accounts.owner_ram, source["DBClusterArn"], accounts.target) for _ in range(3)]
    pages = list(accounts.owner_ram.get_paginator("get_resource_shares").paginate(
        resourceOwner="SELF", PaginationConfig={"PageSize": 2}))
    assert [len(page["resourceShares"]) for page in pages] == [2, 1]
    assert sorted(s["resourceShareArn"] for page in pages for s in page["resourceShares"]) == sorted(
        c["resourceShareArn"] for c in created)

    second = new_account()
    arn = created[0]["resourceShareArn"]
    added = accounts.owner_ram.associate_resource_share(resourceShareArn=arn, principals=[second])
    assert [(a["associatedEntity"], a["status"]) for a in added["resourceShareAssociations"]] == [
        (second, "ASSOCIATING")]
    removed = accounts.owner_ram.disassociate_resource_share(resourceShareArn=arn, principals=[second])
    assert [a["status"] for a in removed["resourceShareAssociations"]] == ["DISASSOCIATED"]
    with pytest.raises(ClientError) as unknown:
        accounts.owner_ram.disassociate_resource_share(resourceShareArn=arn, principals=[new_account()])
    assert error_code(unknown) == "UnknownResourceException"


def test_ram_operations_the_simulator_lacks_say_so(accounts: Accounts) -> None:
    with pytest.raises(ClientError) as lacking:
        accounts.owner_ram.list_permissions()
    assert error_code(lacking) == "NotImplementedException"
    assert "ListPermissions" in lacking.value.response["Error"]["Message"]


@rules("ram-client-token")
def test_a_client_token_makes_a_retry_return_the_first_answer(accounts: Accounts) -> None:
    """Rule `ram-client-token`."""
    source = available_cluster(accounts.owner_rds)
    token = unique("token")
    params = {"name": "share-1", "resourceArns": [source["DBClusterArn"]], "principals": [accounts.target],
              "clientToken": token}
    first = accounts.owner_ram.create_resource_share(**params)["resourceShare"]
    again = accounts.owner_ram.create_resource_share(**params)["resourceShare"]
    assert again["resourceShareArn"] == first["resourceShareArn"]
    assert len(accounts.owner_ram.get_resource_shares(resourceOwner="SELF", name="share-1")["resourceShares"]) == 1
    with pytest.raises(ClientError) as mismatch:
        accounts.owner_ram.create_resource_share(**{**params, "name": "share-2"})
    assert error_code(mismatch) == "IdempotentParameterMismatchException"

    invitation = accounts.target_ram.get_resource_share_invitations(
        resourceShareArns=[first["resourceShareArn"]])["resourceShareInvitations"][0]["resourceShareInvitationArn"]
    for _ in range(2):  # a retried accept with its token is answered, not refused as already accepted
        accepted = accounts.target_ram.accept_resource_share_invitation(
            resourceShareInvitationArn=invitation, clientToken=token)["resourceShareInvitation"]
        assert accepted["status"] == "ACCEPTED"


def test_ram_calls_are_logged_with_their_operation(accounts: Accounts, sim: SimulatorClient) -> None:
    source = available_cluster(accounts.owner_rds)
    share(accounts.owner_ram, source["DBClusterArn"], accounts.target)
    calls = sim.calls(service="ram", action="CreateResourceShare", account=accounts.owner)
    assert [call["status"] for call in calls] == [200]
    assert calls[0]["parameters"]["resourceArns"] == source["DBClusterArn"]
    assert calls[0]["parameters"]["principals"] == accounts.target
    share_arn = accounts.owner_ram.get_resource_shares(resourceOwner="SELF")["resourceShares"][0]["resourceShareArn"]
    accounts.owner_ram.delete_resource_share(resourceShareArn=share_arn)  # its ARN travels in the query string
    deleted = sim.calls(service="ram", action="DeleteResourceShare", account=accounts.owner)
    assert [(call["status"], call["parameters"]["resourceShareArn"]) for call in deleted] == [(200, share_arn)]


def test_faults_apply_to_ram_calls(accounts: Accounts, sim: SimulatorClient) -> None:
    source = available_cluster(accounts.owner_rds)
    name = unique("share")
    sim.add_fault(service="ram", action="CreateResourceShare", error="ThrottlingException", count=1)
    try:
        with pytest.raises(ClientError) as throttled:
            accounts.owner_ram.create_resource_share(name=name, resourceArns=[source["DBClusterArn"]],
                                                     principals=[accounts.target])
        assert error_code(throttled) == "ThrottlingException"
        assert accounts.owner_ram.get_resource_shares(resourceOwner="SELF", name=name)["resourceShares"] == []
        accounts.owner_ram.create_resource_share(name=name, resourceArns=[source["DBClusterArn"]],
                                                 principals=[accounts.target])
        assert len(accounts.owner_ram.get_resource_shares(resourceOwner="SELF", name=name)["resourceShares"]) == 1
    finally:
        sim.clear_faults()


# -- clones --------------------------------------------------------------------------------------------------------


@rules("cross-account-clone-flag", "cross-account-clone-limit")
def test_a_cross_account_clone_is_marked_and_counts_against_the_limits(accounts: Accounts) -> None:
    """Rules `cross-account-clone-flag` and `cross-account-clone-limit` (one per account)."""
    source = accounts.shared_source()
    made = clone(accounts.target_rds, source["DBClusterArn"])
    assert made["CrossAccountClone"] is True
    assert f":{accounts.target}:cluster:" in made["DBClusterArn"]
    assert cluster(accounts.target_rds, made["DBClusterIdentifier"])["CrossAccountClone"] is True
    assert cluster(accounts.owner_rds, source["DBClusterIdentifier"])["CrossAccountClone"] is False

    with pytest.raises(ClientError) as second:
        clone(accounts.target_rds, source["DBClusterArn"])
    assert error_code(second) == "DBClusterQuotaExceededFault"

    accounts.target_rds.delete_db_cluster(DBClusterIdentifier=made["DBClusterIdentifier"], SkipFinalSnapshot=True)
    replaced = clone(accounts.target_rds, source["DBClusterArn"])
    assert replaced["CrossAccountClone"] is True


@rules("clone-group")
def test_a_source_and_its_clones_share_a_clone_group(accounts: Accounts) -> None:
    """Rule `clone-group`."""
    source = accounts.shared_source()
    assert "CloneGroupId" not in source
    never_cloned = accounts.owner_rds.restore_db_cluster_to_point_in_time(
        DBClusterIdentifier=unique("full"), SourceDBClusterIdentifier=source["DBClusterIdentifier"],
        UseLatestRestorableTime=True,
    )["DBCluster"]
    assert "CloneGroupId" not in never_cloned  # a full copy of a cluster in no group is in none
    own = clone(accounts.owner_rds, source["DBClusterIdentifier"])
    other = clone(accounts.target_rds, source["DBClusterArn"])
    group = cluster(accounts.owner_rds, source["DBClusterIdentifier"])["CloneGroupId"]
    assert own["CloneGroupId"] == other["CloneGroupId"] == group
    assert cluster(accounts.target_rds, other["DBClusterIdentifier"])["CloneGroupId"] == group
    inherited = accounts.owner_rds.restore_db_cluster_to_point_in_time(
        DBClusterIdentifier=unique("full"), SourceDBClusterIdentifier=source["DBClusterIdentifier"],
        UseLatestRestorableTime=True,
    )["DBCluster"]
    assert inherited["CloneGroupId"] == group  # "For PITR, the clone group ID is inherited from the source"
    accounts.target_rds.delete_db_cluster(DBClusterIdentifier=other["DBClusterIdentifier"], SkipFinalSnapshot=True)
    assert cluster(accounts.owner_rds, source["DBClusterIdentifier"])["CloneGroupId"] == group


@rules("cross-account-clone-limit")
def test_a_clone_being_deleted_still_counts(accounts: Accounts, sim: SimulatorClient) -> None:
    """Rule `cross-account-clone-limit`: the old clone stands until it is gone."""
    source = accounts.shared_source()
    made = clone(accounts.target_rds, source["DBClusterArn"])
    sim.set_delay(1.0)
    accounts.target_rds.delete_db_cluster(DBClusterIdentifier=made["DBClusterIdentifier"], SkipFinalSnapshot=True)
    assert cluster(accounts.target_rds, made["DBClusterIdentifier"])["Status"] == "deleting"
    with pytest.raises(ClientError) as still_there:
        clone(accounts.target_rds, source["DBClusterArn"])
    assert error_code(still_there) == "DBClusterQuotaExceededFault"

    def gone() -> bool:
        try:
            cluster(accounts.target_rds, made["DBClusterIdentifier"])
        except ClientError:
            return True
        return False

    wait_until(gone)
    sim.set_delay(0)
    assert clone(accounts.target_rds, source["DBClusterArn"])["CrossAccountClone"] is True


@rules("cross-account-clone-flag")
def test_a_same_account_clone_is_not_cross_account(accounts: Accounts) -> None:
    source = available_cluster(accounts.owner_rds)
    first = clone(accounts.owner_rds, source["DBClusterIdentifier"])
    second = clone(accounts.owner_rds, source["DBClusterArn"])
    assert first["CrossAccountClone"] is False and second["CrossAccountClone"] is False


@rules("cross-account-clone-limit")
def test_at_most_fifteen_cross_account_clones_per_source(aws_client: Callable[..., Any], sim: SimulatorClient) -> None:
    """Rule `cross-account-clone-limit`: 15 accounts clone, the 16th is refused; a clone of the source's clone
    counts with the source."""
    owner = new_account()
    owner_rds, owner_ram = as_account(aws_client("rds"), owner), as_account(aws_client("ram"), owner)
    source = available_cluster(owner_rds)
    targets = [new_account() for _ in range(MAX_CROSS_ACCOUNT_CLONES + 1)]
    created = share(owner_ram, source["DBClusterArn"], *targets)
    clients = {}
    for target in targets:
        clients[target] = as_account(aws_client("rds"), target)
        accept(as_account(aws_client("ram"), target), created["resourceShareArn"])
    for target in targets[:MAX_CROSS_ACCOUNT_CLONES]:
        assert clone(clients[target], source["DBClusterArn"])["CrossAccountClone"] is True
    with pytest.raises(ClientError) as sixteenth:
        clone(clients[targets[-1]], source["DBClusterArn"])
    assert error_code(sixteenth) == "DBClusterQuotaExceededFault"

    # The owner's own clone of the source is in the same family: sharing it does not lift the limit.
    own_clone = clone(owner_rds, source["DBClusterIdentifier"])
    owner_rds.create_db_instance(DBInstanceIdentifier=unique("instance"), Engine=ENGINE,
                                 DBClusterIdentifier=own_clone["DBClusterIdentifier"], DBInstanceClass="db.r6g.large")
    accept(as_account(aws_client("ram"), targets[-1]),
           share(owner_ram, own_clone["DBClusterArn"], targets[-1])["resourceShareArn"])
    with pytest.raises(ClientError) as via_clone:
        clone(clients[targets[-1]], own_clone["DBClusterArn"])
    assert error_code(via_clone) == "DBClusterQuotaExceededFault"


@rules("clone-needs-instance")
def test_a_clone_needs_an_instance(accounts: Accounts) -> None:
    """Rule `clone-needs-instance`, in one account and across accounts."""
    bare = available_cluster(accounts.owner_rds, instances=0)
    with pytest.raises(ClientError) as same_account:
        clone(accounts.owner_rds, bare["DBClusterIdentifier"])
    assert error_code(same_account) == "InvalidDBClusterStateFault"
    assert "at least one DB instance" in same_account.value.response["Error"]["Message"]
    # A restore to a point in time that is not a clone does not need one.
    full = accounts.owner_rds.restore_db_cluster_to_point_in_time(
        DBClusterIdentifier=unique("full"), SourceDBClusterIdentifier=bare["DBClusterIdentifier"],
        UseLatestRestorableTime=True,
    )["DBCluster"]
    assert full["CrossAccountClone"] is False

    accept(accounts.target_ram, share(accounts.owner_ram, bare["DBClusterArn"], accounts.target)["resourceShareArn"])
    with pytest.raises(ClientError) as cross_account:
        clone(accounts.target_rds, bare["DBClusterArn"])
    assert error_code(cross_account) == "InvalidDBClusterStateFault"

    accounts.owner_rds.create_db_instance(
        DBInstanceIdentifier=unique("instance"), DBClusterIdentifier=bare["DBClusterIdentifier"], Engine=ENGINE,
        DBInstanceClass="db.r6g.large",
    )
    assert clone(accounts.target_rds, bare["DBClusterArn"])["CrossAccountClone"] is True
    assert clone(accounts.owner_rds, bare["DBClusterIdentifier"])["CrossAccountClone"] is False


@rules("clone-source-available")
def test_a_clone_needs_an_available_source(accounts: Accounts, sim: SimulatorClient) -> None:
    """Rule `clone-source-available`, for another account's source (the lifecycle checks one's own)."""
    source = accounts.shared_source()
    sim.set_rds_status("cluster", source["DBClusterIdentifier"], "modifying", REGION, account=accounts.owner)
    try:
        with pytest.raises(ClientError) as busy:
            clone(accounts.target_rds, source["DBClusterArn"])
        assert error_code(busy) == "InvalidDBClusterStateFault"
        with pytest.raises(ClientError) as busy_own:
            clone(accounts.owner_rds, source["DBClusterIdentifier"])
        assert error_code(busy_own) == "InvalidDBClusterStateFault"
    finally:
        sim.set_rds_status("cluster", source["DBClusterIdentifier"], None, REGION, account=accounts.owner)
    assert clone(accounts.target_rds, source["DBClusterArn"])["CrossAccountClone"] is True


@rules("clone-same-region")
def test_a_clone_is_made_in_the_source_region(accounts: Accounts, aws_client: Callable[..., Any]) -> None:
    """Rule `clone-same-region`."""
    source = accounts.shared_source()
    for rds in (as_account(aws_client("rds", region_name=OTHER_REGION), accounts.target),
                as_account(aws_client("rds", region_name=OTHER_REGION), accounts.owner)):
        with pytest.raises(ClientError) as elsewhere:
            clone(rds, source["DBClusterArn"])
        assert error_code(elsewhere) == "DBClusterNotFoundFault"
        assert f"source cluster's region ({REGION})" in elsewhere.value.response["Error"]["Message"]
    assert clone(accounts.target_rds, source["DBClusterArn"])["CrossAccountClone"] is True


@rules("clone-no-restore-time")
def test_a_clone_takes_no_restore_time(accounts: Accounts) -> None:
    """Rule `clone-no-restore-time` (moto's check, kept)."""
    source = available_cluster(accounts.owner_rds)
    with pytest.raises(ClientError) as timed:
        clone(accounts.owner_rds, source["DBClusterIdentifier"], UseLatestRestorableTime=False,
              RestoreToTime=source["LatestRestorableTime"])
    assert error_code(timed) == "InvalidParameterCombination"
    assert clone(accounts.owner_rds, source["DBClusterIdentifier"])["Status"]


@rules("cross-account-copy-on-write")
def test_a_shared_cluster_is_only_cloned(accounts: Accounts) -> None:
    """Rule `cross-account-copy-on-write`."""
    source = accounts.shared_source()
    with pytest.raises(ClientError) as full_copy:
        clone(accounts.target_rds, source["DBClusterArn"], RestoreType="full-copy")
    assert error_code(full_copy) == "InvalidParameterCombination"
    assert clone(accounts.target_rds, source["DBClusterArn"])["CrossAccountClone"] is True


@rules("shared-cluster-visible")
def test_an_unshared_cluster_is_not_found_by_another_account(
    accounts: Accounts, aws_client: Callable[..., Any]
) -> None:
    """Rule `shared-cluster-visible`: shared with one account is not shared with another."""
    source = accounts.shared_source()
    stranger = as_account(aws_client("rds"), new_account())
    for call in (lambda: cluster(stranger, source["DBClusterArn"]), lambda: clone(stranger, source["DBClusterArn"])):
        with pytest.raises(ClientError) as hidden:
            call()
        assert error_code(hidden) == "DBClusterNotFoundFault"
    assert cluster(accounts.target_rds, source["DBClusterArn"])["DBClusterIdentifier"] == source["DBClusterIdentifier"]


@rules("cross-account-not-serverless")
def test_serverless_v1_is_not_cloned_across_accounts(accounts: Accounts) -> None:
    """Rule `cross-account-not-serverless`."""
    serverless = accounts.shared_source(EngineMode="serverless", instances=0)  # v1 clusters have no instances
    with pytest.raises(ClientError) as refused:
        clone(accounts.target_rds, serverless["DBClusterArn"])
    assert error_code(refused) == "InvalidParameterCombination"
    assert clone(accounts.owner_rds, serverless["DBClusterIdentifier"])["CrossAccountClone"] is False
    provisioned = accounts.shared_source(EngineMode="provisioned")
    assert clone(accounts.target_rds, provisioned["DBClusterArn"])["CrossAccountClone"] is True


@rules("cross-account-clone-key")
def test_an_encrypted_source_needs_a_customer_managed_key_open_to_the_target(
    accounts: Accounts, aws_client: Callable[..., Any]
) -> None:
    """Rule `cross-account-clone-key`: aws/rds is refused, a customer managed key only once its policy names the
    target account."""
    kms = accounts.owner_kms
    default_key = kms.describe_key(KeyId="alias/aws/rds")["KeyMetadata"]["Arn"]
    aws_managed = accounts.shared_source(StorageEncrypted=True, KmsKeyId=default_key)
    with pytest.raises(ClientError) as default:
        clone(accounts.target_rds, aws_managed["DBClusterArn"])
    assert error_code(default) == "KMSKeyNotAccessibleFault"
    assert "aws/rds" in default.value.response["Error"]["Message"]
    unnamed = accounts.shared_source(StorageEncrypted=True)  # encrypted without a key: the default key too
    with pytest.raises(ClientError) as unnamed_default:
        clone(accounts.target_rds, unnamed["DBClusterArn"])
    assert error_code(unnamed_default) == "KMSKeyNotAccessibleFault"

    key = kms.create_key(Description="clone key")["KeyMetadata"]
    source = accounts.shared_source(StorageEncrypted=True, KmsKeyId=key["Arn"])
    with pytest.raises(ClientError) as closed:
        clone(accounts.target_rds, source["DBClusterArn"])
    assert error_code(closed) == "KMSKeyNotAccessibleFault"
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{accounts.owner}:root"}, "Action": "kms:*",
         "Resource": "*"},
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{accounts.target}:root"},
         "Action": ["kms:Decrypt", "kms:CreateGrant", "kms:DescribeKey"], "Resource": "*"},
    ]}
    kms.put_key_policy(KeyId=key["KeyId"], PolicyName="default", Policy=json.dumps(policy))
    made = clone(accounts.target_rds, source["DBClusterArn"])
    assert made["CrossAccountClone"] is True and made["StorageEncrypted"] is True


@rules("no-clone-of-shared-clone")
def test_a_cross_account_clone_is_neither_cloned_nor_shared_again(accounts: Accounts) -> None:
    """Rule `no-clone-of-shared-clone`."""
    source = accounts.shared_source()
    made = clone(accounts.target_rds, source["DBClusterArn"])
    accounts.target_rds.create_db_instance(
        DBInstanceIdentifier=unique("instance"), DBClusterIdentifier=made["DBClusterIdentifier"], Engine=ENGINE,
        DBInstanceClass="db.r6g.large",
    )
    with pytest.raises(ClientError) as cloned_again:
        clone(accounts.target_rds, made["DBClusterIdentifier"])
    assert error_code(cloned_again) == "InvalidDBClusterStateFault"
    with pytest.raises(ClientError) as shared_again:
        share(accounts.target_ram, made["DBClusterArn"], new_account())
    assert error_code(shared_again) == "InvalidDBClusterStateFault"
    # A same-account clone of one's own cluster may itself be cloned and shared.
    own = clone(accounts.owner_rds, source["DBClusterIdentifier"])
    accounts.owner_rds.create_db_instance(
        DBInstanceIdentifier=unique("instance"), DBClusterIdentifier=own["DBClusterIdentifier"], Engine=ENGINE,
        DBInstanceClass="db.r6g.large",
    )
    assert clone(accounts.owner_rds, own["DBClusterIdentifier"])["CrossAccountClone"] is False
    assert share(accounts.owner_ram, own["DBClusterArn"], new_account())["status"] == "ACTIVE"


@rules("cluster-quota")
def test_the_cluster_quota_counts_the_accounts_clusters_in_the_region(aws_client: Callable[..., Any],
                                                                        sim: SimulatorClient) -> None:
    rds = as_account(aws_client("rds"), new_account())
    def quota() -> dict[str, Any]:
        quotas = rds.describe_account_attributes()["AccountQuotas"]
        return next(q for q in quotas if q["AccountQuotaName"] == "DBClusters")
    assert quota()["Used"] == 0 and quota()["Max"] == 40
    available_cluster(rds, instances=0)
    assert quota()["Used"] == 1
    assert as_account(aws_client("rds", region_name=OTHER_REGION), new_account()).describe_account_attributes()[
        "AccountQuotas"][0]["Used"] == 0


# -- the data of a clone ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def database_simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatorProcess]:
    if find_postgres() is None:
        pytest.skip("PostgreSQL is not installed")
    directory = tmp_path_factory.mktemp("simulator-clones")
    process = SimulatorProcess(
        delay=0.5, databases=True, data_dir=directory / "data", log_path=directory / "simulator.log"
    )
    with process:
        yield process


def test_a_cross_account_clone_has_the_sources_data(database_simulator: SimulatorProcess, tmp_path: Path) -> None:
    import psycopg

    session = boto3.Session(aws_access_key_id="AKIDSIMULATOR0000000", aws_secret_access_key="simulator-secret",
                            region_name=REGION)
    target = new_account()
    owner_rds = session.client("rds", endpoint_url=database_simulator.url)
    owner_ram = session.client("ram", endpoint_url=database_simulator.url)
    target_rds = as_account(session.client("rds", endpoint_url=database_simulator.url), target)
    target_ram = as_account(session.client("ram", endpoint_url=database_simulator.url), target)
    ca = tmp_path / "ca.pem"
    ca.write_text(database_simulator.client.ca_pem())

    def connect(found: dict[str, Any]) -> Any:
        return psycopg.connect(host=found["Endpoint"], port=found["Port"], user="postgres",
                               password="not-a-secret-1", dbname="app", sslmode="verify-full", sslrootcert=str(ca),
                               connect_timeout=10)

    source = available_cluster(owner_rds, DatabaseName="app")
    with connect(source) as connection:
        connection.execute("CREATE TABLE people (id int PRIMARY KEY, name text)")
        connection.execute("INSERT INTO people VALUES (1, 'Ada'), (2, 'Grace')")
    accept(target_ram, share(owner_ram, source["DBClusterArn"], target)["resourceShareArn"])
    made = clone(target_rds, source["DBClusterArn"])
    ready = wait_until(lambda: (found := cluster(target_rds, made["DBClusterIdentifier"]))["Status"] == "available"
                       and found, timeout=90.0)
    with connect(ready) as connection:
        rows = connection.execute("SELECT id, name FROM people ORDER BY id").fetchall()
    assert rows == [(1, "Ada"), (2, "Grace")]
    assert ready["Port"] != source["Port"]  # its own server: writes to the clone leave the source alone

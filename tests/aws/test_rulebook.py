"""The rulebook (aurora_restore_devenv.simulator.rulebook), case by case, against both RDS doubles.

Every case runs against the simulator over HTTP and against the unit tests' fake RDS (tests/unit/fake_rds.py),
through one small interface (`World`), and asserts the error code and that the refused request created or
changed nothing; most also show the nearest request the rule accepts. Each case names the rules it exercises
(`@rules(...)`); `test_every_rule_has_a_case_on_both_doubles` fails for a rule of the rulebook without one, unless
SIMULATOR_ONLY says why the fake cannot have it.
"""

from __future__ import annotations

import inspect
import json
import re
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.exceptions import ClientError

from aurora_restore.aws.rds import as_tag_list, tags_of
from aurora_restore.errors import RestoreError
from aurora_restore_devenv.simulator import rulebook
from tests.aws import test_simulator_clones
from tests.unit.fake_rds import LIVE, FakeCloud

REGION, OTHER_REGION = "us-east-1", "us-west-2"
ACCOUNT, OWNER = "123456789012", "210987654321"
ENGINE, VERSION = "aurora-postgresql", "15.4"
LAG = 30.0  # seconds LatestRestorableTime trails the present in these tests

# Rules no case can exercise on the fake, with why. Every other rule needs a case that runs on both doubles.
SIMULATOR_ONLY: dict[str, str] = {
    "describe-snapshots-cluster-exists": "the gateway lists by the db-cluster-id filter, never DBClusterIdentifier, "
    "so the fake's list_cluster_snapshots has no such parameter",
    "describe-snapshots-filters": "the gateway sends only the db-cluster-id filter; the fake takes no filters",
    "describe-max-records": "the fake's describes answer in one piece: it has no MaxRecords or Marker",
}
# Clones and RAM shares: their cases are in test_simulator_clones.py, against the simulator; the unit tests' doubles
# of them (fake_rds.py's clone source, fake_clone.py's RAM) are gateway fakes with no `World` here yet.
CLONE_RULES_SIMULATOR_ONLY = (
    "clone-source-available", "clone-same-region", "clone-no-restore-time",
    "shared-cluster-visible", "cross-account-copy-on-write", "cross-account-not-serverless",
    "cross-account-clone-key", "cross-account-clone-limit", "no-clone-of-shared-clone", "cross-account-clone-flag",
    "clone-group", "cluster-quota", "ram-share-own-resource", "ram-external-principals", "ram-invitation",
    "ram-client-token",
)
SIMULATOR_ONLY.update({name: "a clone or RAM rule: cases in test_simulator_clones.py, no World of the unit tests' "
                       "clone and RAM fakes yet" for name in CLONE_RULES_SIMULATOR_ONLY})
# Errors common to all RDS actions (the API reference's Common Errors), which the service model does not list.
COMMON_ERRORS = frozenset({"InvalidParameterValue", "InvalidParameterCombination", "MissingParameter"})


def rules(*names: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The rulebook rules a case exercises (read by the coverage test)."""

    def mark(test: Callable[..., Any]) -> Callable[..., Any]:
        test.rules = names  # type: ignore[attr-defined]
        return test

    return mark


class Refused(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class SimulatorWorld:
    """The simulator, reached with boto3 as the operator reaches AWS."""

    name = "simulator"

    def __init__(self, aws_client: Callable[..., Any], sim: Any) -> None:
        self.aws_client = aws_client
        self.sim = sim
        self._clients: dict[tuple[str, str, str], Any] = {}

    def client(self, service: str, region: str = REGION, account: str = ACCOUNT) -> Any:
        if (service, region, account) not in self._clients:
            client = self.aws_client(service, region_name=region)
            if account != ACCOUNT:
                client.meta.events.register(
                    f"before-sign.{service}.*",
                    lambda request, **_: request.headers.add_header("x-moto-account-id", account),
                )
            self._clients[(service, region, account)] = client
        return self._clients[(service, region, account)]

    def act(self, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except ClientError as error:
            raise Refused(error.response["Error"]["Code"]) from None

    # -- set-up ------------------------------------------------------------------------------------------------

    def key(self, region: str = REGION, account: str = ACCOUNT, users: tuple[str, ...] = (),
            grant: bool = False) -> str:
        kms = self.client("kms", region, account)
        principals = [f"arn:aws:iam::{account}:root"] + ([] if grant else [f"arn:aws:iam::{u}:root" for u in users])
        policy = {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": principals}, "Action": "kms:*", "Resource": "*"}]}
        key = kms.create_key(Policy=json.dumps(policy))["KeyMetadata"]
        for user in users if grant else ():
            kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=f"arn:aws:iam::{user}:root", Operations=["Decrypt"])
        return key["Arn"]

    def aws_managed_key(self, region: str = REGION, account: str = ACCOUNT) -> str:
        return self.client("kms", region, account).describe_key(KeyId="alias/aws/rds")["KeyMetadata"]["Arn"]

    def set_lag(self, seconds: float) -> None:
        self.sim.set_restorable_lag(seconds)

    def cluster(self, name: str, instances: int = 0, protected: bool = False, tags: dict | None = None) -> None:
        rds = self.client("rds")
        rds.create_db_cluster(DBClusterIdentifier=name, Engine=ENGINE, EngineVersion=VERSION, MasterUsername="admin",
                              MasterUserPassword="first-password-1", DeletionProtection=protected,
                              Tags=as_tag_list(tags or {}))
        for number in range(1, instances + 1):
            rds.create_db_instance(DBInstanceIdentifier=f"{name}-instance-{number}", DBClusterIdentifier=name,
                                   Engine=ENGINE, DBInstanceClass="db.r6g.large")

    def snapshot(self, name: str, region: str = REGION, account: str = ACCOUNT, key: str | None = None,
                 cluster: str | None = None) -> str:
        rds = self.client("rds", region, account)
        cluster = cluster or unique("of")
        encryption = {"StorageEncrypted": True, "KmsKeyId": key} if key else {}
        rds.create_db_cluster(DBClusterIdentifier=cluster, Engine=ENGINE, EngineVersion=VERSION,
                              MasterUsername="admin", MasterUserPassword="first-password-1", **encryption)
        return rds.create_db_cluster_snapshot(DBClusterIdentifier=cluster, DBClusterSnapshotIdentifier=name)[
            "DBClusterSnapshot"]["DBClusterSnapshotArn"]

    def share(self, name: str, with_account: str, account: str = OWNER, region: str = REGION) -> None:
        self.client("rds", region, account).modify_db_cluster_snapshot_attribute(
            DBClusterSnapshotIdentifier=name, AttributeName="restore", ValuesToAdd=[with_account])

    # -- the calls the rules are about -------------------------------------------------------------------------

    def copy(self, source_arn: str, target: str, *, source_region: str = REGION, region: str = REGION,
             kms_key_id: str | None = None, tags: dict | None = None) -> None:
        params: dict[str, Any] = {"SourceDBClusterSnapshotIdentifier": source_arn,
                                  "TargetDBClusterSnapshotIdentifier": target, "Tags": as_tag_list(tags or {})}
        if source_region != region:
            params["SourceRegion"] = source_region
        if kms_key_id:
            params["KmsKeyId"] = kms_key_id
        self.act(lambda: self.client("rds", region).copy_db_cluster_snapshot(**params))

    def restore(self, snapshot: str, cluster: str, engine_version: str | None = None, tags: dict | None = None,
                kms_key_id: str | None = None) -> None:
        params = {"DBClusterIdentifier": cluster, "SnapshotIdentifier": snapshot, "Engine": ENGINE,
                  "Tags": as_tag_list(tags or {})}
        if engine_version:
            params["EngineVersion"] = engine_version
        if kms_key_id:
            params["KmsKeyId"] = kms_key_id
        self.act(lambda: self.client("rds").restore_db_cluster_from_snapshot(**params))

    def restore_to(self, source: str, cluster: str, moment: datetime) -> None:
        self.act(lambda: self.client("rds").restore_db_cluster_to_point_in_time(
            DBClusterIdentifier=cluster, SourceDBClusterIdentifier=source, RestoreToTime=moment))

    def clone(self, source: str, cluster: str) -> None:
        self.act(lambda: self.client("rds").restore_db_cluster_to_point_in_time(
            DBClusterIdentifier=cluster, SourceDBClusterIdentifier=source, RestoreType="copy-on-write",
            UseLatestRestorableTime=True))

    def create_instance(self, cluster: str, instance: str) -> None:
        self.act(lambda: self.client("rds").create_db_instance(
            DBInstanceIdentifier=instance, DBClusterIdentifier=cluster, Engine=ENGINE, DBInstanceClass="db.r6g.large"))

    def delete_cluster(self, cluster: str, final_snapshot: str | None = None, skip: bool | None = None) -> None:
        params: dict[str, Any] = {"FinalDBSnapshotIdentifier": final_snapshot} if final_snapshot else {}
        params["SkipFinalSnapshot"] = not final_snapshot if skip is None else skip
        self.act(lambda: self.client("rds").delete_db_cluster(DBClusterIdentifier=cluster, **params))

    def rotate_password(self, cluster: str) -> dict:
        return self.act(lambda: self.client("rds").modify_db_cluster(
            DBClusterIdentifier=cluster, RotateMasterUserPassword=True, ApplyImmediately=True))["DBCluster"]

    def rename(self, cluster: str, new: str) -> dict:
        return self.act(lambda: self.client("rds").modify_db_cluster(
            DBClusterIdentifier=cluster, NewDBClusterIdentifier=new, ApplyImmediately=True))["DBCluster"]

    def reset_password(self, cluster: str, password: str) -> dict:
        return self.act(lambda: self.client("rds").modify_db_cluster(
            DBClusterIdentifier=cluster, MasterUserPassword=password, ApplyImmediately=True))["DBCluster"]

    def protect(self, cluster: str, on: bool) -> dict:
        return self.act(lambda: self.client("rds").modify_db_cluster(
            DBClusterIdentifier=cluster, DeletionProtection=on, ApplyImmediately=True))["DBCluster"]

    def add_tags(self, cluster: str, tags: dict) -> None:
        arn = self.describe_cluster(cluster)["DBClusterArn"]
        self.act(lambda: self.client("rds").add_tags_to_resource(ResourceName=arn, Tags=as_tag_list(tags)))

    def share_snapshot(self, name: str, account: str) -> None:
        self.act(lambda: self.client("rds").modify_db_cluster_snapshot_attribute(
            DBClusterSnapshotIdentifier=name, AttributeName="restore", ValuesToAdd=[account]))

    # -- observations -----------------------------------------------------------------------------------------

    def describe_cluster(self, name: str) -> dict | None:
        try:
            return self.client("rds").describe_db_clusters(DBClusterIdentifier=name)["DBClusters"][0]
        except ClientError:
            return None

    def has_snapshot(self, name: str, region: str = REGION) -> bool:
        try:
            return bool(self.client("rds", region).describe_db_cluster_snapshots(
                DBClusterSnapshotIdentifier=name)["DBClusterSnapshots"])
        except ClientError:
            return False

    def has_instance(self, name: str) -> bool:
        try:
            return bool(self.client("rds").describe_db_instances(DBInstanceIdentifier=name)["DBInstances"])
        except ClientError:
            return False

    def listed(self, cluster: str, snapshot_type: str) -> list[str]:
        """Snapshot ARNs of a cluster (of any account) listed with the SnapshotType and IncludeShared the gateway's
        list_cluster_snapshots sends ("any": IncludeShared); the cluster is picked out here, as the gateway's
        db-cluster-id filter would."""
        params: dict[str, Any] = {"IncludeShared": True} if snapshot_type == "any" else {
            "SnapshotType": snapshot_type, "IncludeShared": snapshot_type == "shared"}
        found = self.client("rds").describe_db_cluster_snapshots(**params)["DBClusterSnapshots"]
        return [s["DBClusterSnapshotArn"] for s in found if s["DBClusterIdentifier"] == cluster.lower()]

    def shared_with(self, name: str) -> list[str]:
        attributes = self.client("rds").describe_db_cluster_snapshot_attributes(DBClusterSnapshotIdentifier=name)
        for attribute in attributes["DBClusterSnapshotAttributesResult"]["DBClusterSnapshotAttributes"]:
            if attribute["AttributeName"] == "restore":
                return attribute.get("AttributeValues") or []
        return []


class FakeWorld:
    """The unit tests' fake RDS (the RdsGateway methods the operator calls)."""

    name = "fake"

    def __init__(self) -> None:
        self.cloud = FakeCloud(ticks=0)
        self.set_lag(LAG)

    def rds(self, region: str = REGION, account: str = ACCOUNT) -> Any:
        return self.cloud.account(account).rds(region)

    def act(self, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except RestoreError as error:
            raise Refused(getattr(error, "aws_code", error.reason)) from None

    def key(self, region: str = REGION, account: str = ACCOUNT, users: tuple[str, ...] = (),
            grant: bool = False) -> str:
        kms = self.cloud.account(account).kms(region)
        key = kms.add_key(unique("key"), users=[] if grant else list(users))["Arn"]
        for user in users if grant else ():
            kms.create_grant(key, user)
        return key

    def aws_managed_key(self, region: str = REGION, account: str = ACCOUNT) -> str:
        return self.cloud.account(account).kms(region).aws_managed_key_arn

    def set_lag(self, seconds: float) -> None:
        self.rds().restorable_lag = seconds

    def cluster(self, name: str, instances: int = 0, protected: bool = False, tags: dict | None = None) -> None:
        self.rds().add_cluster(name, instances=instances, deletion_protection=protected, tags=tags, restorable=LIVE)

    def snapshot(self, name: str, region: str = REGION, account: str = ACCOUNT, key: str | None = None,
                 cluster: str | None = None) -> str:
        return self.rds(region, account).add_snapshot(name, cluster or unique("of"), encrypted=key is not None,
                                                      kms_key_id=key)["DBClusterSnapshotArn"]

    def share(self, name: str, with_account: str, account: str = OWNER, region: str = REGION) -> None:
        self.rds(region, account).share_snapshot(name, with_account)

    def copy(self, source_arn: str, target: str, *, source_region: str = REGION, region: str = REGION,
             kms_key_id: str | None = None, tags: dict | None = None) -> None:
        self.act(lambda: self.rds(region).copy_snapshot(source_arn, source_region, target, kms_key_id, False,
                                                        tags or {}))

    def restore(self, snapshot: str, cluster: str, engine_version: str | None = None, tags: dict | None = None,
                kms_key_id: str | None = None) -> None:
        params = {"DBClusterIdentifier": cluster, "SnapshotIdentifier": snapshot, "Engine": ENGINE,
                  "Tags": as_tag_list(tags or {})}
        if engine_version:
            params["EngineVersion"] = engine_version
        if kms_key_id:
            params["KmsKeyId"] = kms_key_id
        self.act(lambda: self.rds().restore_cluster_from_snapshot(**params))

    def restore_to(self, source: str, cluster: str, moment: datetime) -> None:
        self.act(lambda: self.rds().restore_cluster_to_point_in_time(
            DBClusterIdentifier=cluster, SourceDBClusterIdentifier=source, RestoreToTime=moment))

    def clone(self, source: str, cluster: str) -> None:
        self.act(lambda: self.rds().restore_cluster_to_point_in_time(
            DBClusterIdentifier=cluster, SourceDBClusterIdentifier=source, RestoreType="copy-on-write",
            UseLatestRestorableTime=True))

    def create_instance(self, cluster: str, instance: str) -> None:
        self.act(lambda: self.rds().create_instance(
            DBInstanceIdentifier=instance, DBClusterIdentifier=cluster, Engine=ENGINE, DBInstanceClass="db.r6g.large"))

    def delete_cluster(self, cluster: str, final_snapshot: str | None = None, skip: bool | None = None) -> None:
        self.act(lambda: self.rds().delete_cluster(cluster, final_snapshot, skip_final_snapshot=skip))

    def rotate_password(self, cluster: str) -> dict:
        return self.act(lambda: self.rds().modify_cluster(cluster, RotateMasterUserPassword=True))

    def rename(self, cluster: str, new: str) -> dict:
        return self.act(lambda: self.rds().rename_cluster(cluster, new))

    def reset_password(self, cluster: str, password: str) -> dict:
        return self.act(lambda: self.rds().modify_cluster(cluster, MasterUserPassword=password))

    def protect(self, cluster: str, on: bool) -> dict:
        return self.act(lambda: self.rds().modify_cluster(cluster, DeletionProtection=on))

    def add_tags(self, cluster: str, tags: dict) -> None:
        arn = self.describe_cluster(cluster)["DBClusterArn"]
        self.act(lambda: self.rds().add_tags(arn, tags))

    def share_snapshot(self, name: str, account: str) -> None:
        self.act(lambda: self.rds().share_snapshot(name, account))

    def describe_cluster(self, name: str) -> dict | None:
        return self.rds().describe_cluster(name)

    def has_snapshot(self, name: str, region: str = REGION) -> bool:
        return self.rds(region).describe_snapshot(name) is not None

    def has_instance(self, name: str) -> bool:
        return self.rds().describe_instance(name) is not None

    def listed(self, cluster: str, snapshot_type: str) -> list[str]:
        return [s["DBClusterSnapshotArn"] for s in self.rds().list_cluster_snapshots(cluster, snapshot_type)]

    def shared_with(self, name: str) -> list[str]:
        return self.rds().restore_accounts(name)


@pytest.fixture(params=["simulator", "fake"])
def world(request: pytest.FixtureRequest) -> Iterator[SimulatorWorld | FakeWorld]:
    if request.param == "fake":
        yield FakeWorld()
        return
    sim = request.getfixturevalue("simulator_client")
    delay, lag = sim.set_delay(0), sim.set_restorable_lag(LAG)
    try:
        yield SimulatorWorld(request.getfixturevalue("aws_client"), sim)
    finally:
        sim.set_delay(delay)
        sim.set_restorable_lag(lag)


def refused(code: str, call: Callable[[], Any]) -> None:
    with pytest.raises(Refused) as error:
        call()
    assert error.value.code == code


def named(prefix: str, length: int) -> str:
    """A unique identifier of exactly `length` characters."""
    start = unique(prefix)
    return start + "x" * (length - len(start))


# -- the rulebook itself -------------------------------------------------------------------------------------------


def ram_error_codes() -> set[str]:
    """The error codes of botocore's RAM service model (for the rules of RAM calls)."""
    model = botocore.session.get_session().get_service_model("ram")
    return {model.shape_for(name).name for name in model.shape_names if model.shape_for(name).metadata.get("exception")}


def rds_error_codes() -> set[str]:
    """The error codes of botocore's RDS service model (each exception shape's code)."""
    model = botocore.session.get_session().get_service_model("rds")
    shapes = (model.shape_for(name) for name in model.shape_names)
    return {shape.metadata.get("error", {}).get("code", shape.name) for shape in shapes
            if shape.metadata.get("exception")}


def test_every_rule_quotes_the_documentation_answers_a_real_code_and_names_its_check() -> None:
    assert len(rulebook.RULES_BY_NAME) == len(rulebook.RULES)
    codes = rds_error_codes() | ram_error_codes() | COMMON_ERRORS
    simulator = Path(rulebook.__file__).parent
    for rule in rulebook.RULES:
        assert re.fullmatch(r"[a-z]+(-[a-z]+)*", rule.name), rule.name
        assert rule.calls, rule.name
        # A sentence of the documentation in quotes, not only a paraphrase.
        assert any(len(quoted.split()) >= 5 for quoted in re.findall(r'"([^"]+)"', rule.quote)), rule.name
        assert rule.code in codes or (rule.code == "-" and "not an error" in rule.quote), (rule.name, rule.code)
        if rule.check is None:
            assert rule.enforced_by != "validation.py", f"{rule.name}: no check and enforced by validation.py"
        else:
            check = getattr(rulebook, rule.check, None)
            assert callable(check), f"{rule.name}: rulebook.{rule.check} does not exist"
            assert f"`{rule.name}`" in (inspect.getdoc(check) or ""), f"{rule.name}: {rule.check}'s docstring"
        for module in re.findall(r"\w+\.py", rule.enforced_by):
            assert (simulator / module).is_file(), f"{rule.name}: enforced by {module}, which does not exist"


def test_the_documentation_lists_exactly_the_rules_of_the_rulebook() -> None:
    text = (Path(__file__).parents[2] / "docs" / "simulator.md").read_text()
    section = text.split("## The RDS rulebook", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[1:-1] for line in section.splitlines() if line.startswith("| `")]
    assert [cells[0].strip().strip("`") for cells in rows] == [rule.name for rule in rulebook.RULES]
    for cells, rule in zip(rows, rulebook.RULES):
        assert cells[-1].strip().strip("`") == rule.code, rule.name


def rule_cases() -> dict[str, list[tuple[str, bool]]]:
    """Rule name -> the cases that exercise it, each with whether it runs on both doubles."""
    cases: dict[str, list[tuple[str, bool]]] = {}
    tests = {**vars(test_simulator_clones), **globals()}  # the clone and RAM rules' cases live there
    for name, test in sorted(tests.items()):
        if name.startswith("test_") and callable(test):
            both = "world" in inspect.signature(test).parameters
            for rule in getattr(test, "rules", ()):
                cases.setdefault(rule, []).append((name, both))
    return cases


def test_every_rule_has_a_case_on_both_doubles() -> None:
    cases, known = rule_cases(), set(rulebook.RULES_BY_NAME)
    assert set(cases) <= known, f"cases name rules the rulebook lacks: {sorted(set(cases) - known)}"
    assert set(SIMULATOR_ONLY) <= known, f"SIMULATOR_ONLY names unknown rules: {sorted(set(SIMULATOR_ONLY) - known)}"
    assert all(reason.strip() for reason in SIMULATOR_ONLY.values())
    without = [rule.name for rule in rulebook.RULES if rule.name not in cases]
    assert not without, f"rules without a case: {without}"
    one_sided = [rule.name for rule in rulebook.RULES
                 if rule.name not in SIMULATOR_ONLY and not any(both for _, both in cases[rule.name])]
    assert not one_sided, f"rules exercised on the simulator only (add a case on `world` or to SIMULATOR_ONLY): " \
                          f"{one_sided}"
    stale = [name for name in SIMULATOR_ONLY if any(both for _, both in cases.get(name, []))]
    assert not stale, f"SIMULATOR_ONLY rules that have a case on both doubles: {stale}"


# -- encryption of copies and shares -----------------------------------------------------------------------------


@rules("unencrypted-copy-with-key")
def test_an_unencrypted_copy_takes_no_key(world) -> None:
    source, target = world.snapshot(unique("plain")), unique("copy")
    refused("InvalidParameterCombination", lambda: world.copy(source, target, kms_key_id=world.key()))
    assert not world.has_snapshot(target)
    world.copy(source, target)
    assert world.has_snapshot(target)


@rules("cross-region-encrypted-copy-needs-key")
def test_a_cross_region_copy_of_an_encrypted_snapshot_needs_a_key_of_the_destination(world) -> None:
    source, target = world.snapshot(unique("enc"), key=world.key()), unique("copy")
    refused("InvalidParameterValue", lambda: world.copy(source, target, source_region=REGION, region=OTHER_REGION))
    assert not world.has_snapshot(target, OTHER_REGION)
    world.copy(source, target, source_region=REGION, region=OTHER_REGION, kms_key_id=world.key(OTHER_REGION))
    assert world.has_snapshot(target, OTHER_REGION)


@rules("key-in-request-region")
def test_a_key_must_be_of_the_requests_region(world) -> None:
    source, target, cluster = world.snapshot(unique("enc"), key=world.key()), unique("copy"), unique("restored")
    refused("KMSKeyNotAccessibleFault", lambda: world.copy(source, target, kms_key_id=world.key(OTHER_REGION)))
    assert not world.has_snapshot(target)
    refused("KMSKeyNotAccessibleFault", lambda: world.restore(source, cluster, kms_key_id=world.key(OTHER_REGION)))
    assert world.describe_cluster(cluster) is None
    world.copy(source, target, kms_key_id=world.key())
    assert world.has_snapshot(target)


@rules("shared-encrypted-copy-needs-key")
def test_a_shared_encrypted_snapshot_is_copied_only_with_a_key(world) -> None:
    name = unique("shared")
    source = world.snapshot(name, account=OWNER, key=world.key(account=OWNER, users=(ACCOUNT,)))
    world.share(name, ACCOUNT)
    target = unique("copy")
    refused("InvalidParameterValue", lambda: world.copy(source, target))
    assert not world.has_snapshot(target)
    world.copy(source, target, kms_key_id=world.key())
    assert world.has_snapshot(target)


@rules("shared-encrypted-needs-key-access")
@pytest.mark.parametrize("access", ["none", "key policy", "grant"])
def test_a_shared_encrypted_snapshot_needs_access_to_the_owners_key(world, access: str) -> None:
    users = () if access == "none" else (ACCOUNT,)
    name = unique("shared")
    source = world.snapshot(name, account=OWNER, key=world.key(account=OWNER, users=users, grant=access == "grant"))
    world.share(name, ACCOUNT)
    target, cluster = unique("copy"), unique("restored")
    if access == "none":
        refused("KMSKeyNotAccessibleFault", lambda: world.copy(source, target, kms_key_id=world.key()))
        assert not world.has_snapshot(target)
        refused("KMSKeyNotAccessibleFault", lambda: world.restore(source, cluster))
        assert world.describe_cluster(cluster) is None
    else:
        world.copy(source, target, kms_key_id=world.key())
        assert world.has_snapshot(target)
        world.restore(source, cluster)
        assert world.describe_cluster(cluster) is not None


@rules("aws-managed-key-not-shareable")
def test_a_snapshot_under_the_aws_managed_key_cannot_be_shared(world) -> None:
    name = unique("managed")
    source = world.snapshot(name, key=world.aws_managed_key())
    refused("InvalidParameterValue", lambda: world.share_snapshot(name, OWNER))
    assert world.shared_with(name) == []
    # What the documentation says to do instead (and spec.output.snapshot.kmsKeyId does): copy it with a
    # customer-managed key and share the copy.
    copy = unique("recopied")
    world.copy(source, copy, kms_key_id=world.key())
    assert world.has_snapshot(copy)  # looked at: available
    world.share_snapshot(copy, OWNER)
    assert world.shared_with(copy) == [OWNER]


@rules("encrypted-not-public")
def test_an_encrypted_snapshot_is_shared_with_accounts_but_not_made_public(world) -> None:
    encrypted, plain = unique("enc"), unique("plain")
    world.snapshot(encrypted, key=world.key())
    refused("InvalidParameterValue", lambda: world.share_snapshot(encrypted, "all"))
    assert world.shared_with(encrypted) == []
    world.share_snapshot(encrypted, OWNER)
    assert world.shared_with(encrypted) == [OWNER]
    world.snapshot(plain)
    world.share_snapshot(plain, "all")
    assert world.shared_with(plain) == ["all"]


# -- identifiers and tags ----------------------------------------------------------------------------------------

BAD_IDENTIFIERS = ["1starts-with-a-digit", "two--hyphens", "ends-with-hyphen-", "a" * 64, "under_score"]


@rules("identifier")
@pytest.mark.parametrize("identifier", BAD_IDENTIFIERS)
def test_cluster_instance_and_snapshot_identifiers(world, identifier: str) -> None:
    snapshot = world.snapshot(unique("snap"))
    refused("InvalidParameterValue", lambda: world.restore(snapshot, identifier))
    assert world.describe_cluster(identifier) is None
    refused("InvalidParameterValue", lambda: world.copy(snapshot, identifier))
    assert not world.has_snapshot(identifier)
    cluster = unique("cluster")
    world.cluster(cluster)
    refused("InvalidParameterValue", lambda: world.create_instance(cluster, identifier))
    assert not world.has_instance(identifier)
    refused("InvalidParameterValue", lambda: world.rename(cluster, identifier))
    assert world.describe_cluster(cluster) is not None


@rules("identifier")
def test_identifiers_of_63_characters_and_in_upper_case_are_accepted_and_stored_lower_case(world) -> None:
    snapshot = world.snapshot(unique("snap"))
    longest, upper, copy = named("long", 63), unique("Upper-Case").replace("-", "-X", 1), named("copy", 63)
    world.restore(snapshot, longest)
    assert world.describe_cluster(longest)["DBClusterIdentifier"] == longest
    world.copy(snapshot, copy)
    assert world.has_snapshot(copy)
    world.restore(snapshot, upper)
    assert world.describe_cluster(upper.lower())["DBClusterIdentifier"] == upper.lower()


@rules("final-snapshot-identifier", "delete-needs-final-snapshot-choice")
def test_a_deletion_chooses_a_final_snapshot_of_up_to_255_characters_or_none(world) -> None:
    cluster = unique("cluster")
    world.cluster(cluster)
    refused("InvalidParameterCombination", lambda: world.delete_cluster(cluster, skip=False))
    refused("InvalidParameterValue", lambda: world.delete_cluster(cluster, "bad--final"))
    refused("InvalidParameterValue", lambda: world.delete_cluster(cluster, named("final", 256)))
    assert world.describe_cluster(cluster)["Status"] == "available"
    final = named("final", 255)
    world.delete_cluster(cluster, final)
    assert world.has_snapshot(final)


@rules("tag", "tag-limit")
@pytest.mark.parametrize("tags", [
    {"k" * 129: "v"},
    {"key": "v" * 257},
    {"aws:owner": "me"},
    {"rds:owner": "me"},
    {"semi;colon": "v"},
    {f"key-{n}": "v" for n in range(51)},
], ids=["long-key", "long-value", "aws-prefix", "rds-prefix", "character", "51-tags"])
def test_tags(world, tags: dict) -> None:
    cluster = unique("restored")
    refused("InvalidParameterValue", lambda: world.restore(world.snapshot(unique("snap")), cluster, tags=tags))
    assert world.describe_cluster(cluster) is None


@rules("tag", "tag-limit")
def test_50_tags_with_a_128_character_key_and_a_256_character_value_are_accepted(world) -> None:
    cluster = unique("restored")
    tags = {"k" * 128: "v" * 256, **{f"key-{n}": "v" for n in range(49)}}
    world.restore(world.snapshot(unique("snap")), cluster, tags=tags)
    assert tags_of(world.describe_cluster(cluster)) == tags


@rules("tag-limit")
def test_at_most_50_tags_counting_those_a_resource_has(world) -> None:
    cluster = unique("cluster")
    world.cluster(cluster, tags={f"old-{n}": "v" for n in range(40)})
    refused("InvalidParameterValue", lambda: world.add_tags(cluster, {f"new-{n}": "v" for n in range(11)}))
    assert len(tags_of(world.describe_cluster(cluster))) == 40
    world.add_tags(cluster, {**{f"old-{n}": "w" for n in range(40)}, **{f"new-{n}": "v" for n in range(10)}})
    assert len(tags_of(world.describe_cluster(cluster))) == 50


# -- restores ------------------------------------------------------------------------------------------------------


@rules("restore-engine-version")
def test_a_restore_may_go_up_but_not_down_in_version(world) -> None:
    snapshot, down, up = world.snapshot(unique("snap")), unique("down"), unique("up")
    refused("InvalidParameterCombination", lambda: world.restore(snapshot, down, "15.2"))
    assert world.describe_cluster(down) is None
    world.restore(snapshot, up, "15.5")
    assert world.describe_cluster(up)["EngineVersion"] == "15.5"


@rules("existing-cluster-identifier")
def test_a_new_cluster_cannot_take_an_existing_identifier(world) -> None:
    taken = unique("taken")
    world.cluster(taken, tags={"owner": "first"})
    refused("DBClusterAlreadyExistsFault", lambda: world.restore(world.snapshot(unique("snap")), taken))
    latest = world.describe_cluster(taken)["LatestRestorableTime"]
    refused("DBClusterAlreadyExistsFault", lambda: world.restore_to(taken, taken, latest))
    assert world.describe_cluster(taken)["Status"] == "available"
    assert tags_of(world.describe_cluster(taken)) == {"owner": "first"}


@rules("restorable-window")
def test_restore_to_time_must_lie_in_the_restorable_window(world) -> None:
    source = unique("source")
    world.cluster(source)
    described = world.describe_cluster(source)
    earliest, latest = described["EarliestRestorableTime"], described["LatestRestorableTime"]
    # LAG behind the present, never before the creation: a cluster younger than LAG can be restored to its creation.
    assert latest == earliest
    for moment in (latest + timedelta(seconds=1), datetime.now(timezone.utc), earliest - timedelta(minutes=1)):
        cluster = unique("pitr")
        refused("InvalidRestoreFault", lambda: world.restore_to(source, cluster, moment))
        assert world.describe_cluster(cluster) is None
    within = unique("pitr")
    world.restore_to(source, within, latest)
    assert world.describe_cluster(within) is not None
    world.set_lag(0)
    try:
        latest = world.describe_cluster(source)["LatestRestorableTime"]
        assert abs((datetime.now(timezone.utc) - latest).total_seconds()) < 5
    finally:
        world.set_lag(LAG)


@rules("clone-needs-instance")
def test_a_clone_needs_a_source_with_an_instance(world) -> None:
    bare, served = unique("bare"), unique("served")
    world.cluster(bare)
    world.cluster(served, instances=1)
    clone = unique("clone")
    refused("InvalidDBClusterStateFault", lambda: world.clone(bare, clone))
    assert world.describe_cluster(clone) is None
    world.clone(served, clone)
    assert world.describe_cluster(clone) is not None


# -- listing snapshots ---------------------------------------------------------------------------------------------


@rules("describe-snapshots-shared")
def test_shared_snapshots_are_listed_with_include_shared_or_snapshot_type_shared(world) -> None:
    name, cluster = unique("shared"), unique("of")
    arn = world.snapshot(name, account=OWNER, cluster=cluster)
    assert arn not in world.listed(cluster, "any")
    world.share(name, ACCOUNT)
    assert arn in world.listed(cluster, "any")
    assert arn in world.listed(cluster, "shared")
    assert arn not in world.listed(cluster, "manual")


@pytest.fixture
def simulator_world(world):
    """Cases the fake cannot have (SIMULATOR_ONLY says why) and the simulator's control API."""
    if world.name != "simulator":
        pytest.skip("not modelled by the fake (see SIMULATOR_ONLY)")
    return world


@rules("describe-snapshots-cluster-exists", "describe-snapshots-filters")
def test_listing_the_snapshots_of_a_missing_cluster_or_by_an_unknown_filter_is_refused(simulator_world) -> None:
    rds = simulator_world.client("rds")
    refused("DBClusterNotFoundFault", lambda: simulator_world.act(
        lambda: rds.describe_db_cluster_snapshots(DBClusterIdentifier=unique("none"))))
    refused("InvalidParameterValue", lambda: simulator_world.act(
        lambda: rds.describe_db_cluster_snapshots(Filters=[{"Name": "no-such-filter", "Values": ["x"]}])))


@rules("describe-max-records")
def test_max_records_is_20_to_100_and_more_records_come_with_a_marker(simulator_world) -> None:
    rds = simulator_world.client("rds")
    for action in (rds.describe_db_clusters, rds.describe_db_instances, rds.describe_db_cluster_snapshots):
        for refused_value in (19, 101):
            refused("InvalidParameterValue", lambda: simulator_world.act(lambda: action(MaxRecords=refused_value)))
        for accepted in (20, 100):
            simulator_world.act(lambda: action(MaxRecords=accepted))
    cluster = unique("paged")
    simulator_world.cluster(cluster)
    for number in range(21):
        rds.create_db_cluster_snapshot(DBClusterSnapshotIdentifier=f"{cluster}-{number}", DBClusterIdentifier=cluster)
    listing = {"Filters": [{"Name": "db-cluster-id", "Values": [cluster]}], "SnapshotType": "manual"}
    first = rds.describe_db_cluster_snapshots(MaxRecords=20, **listing)
    rest = rds.describe_db_cluster_snapshots(MaxRecords=20, Marker=first["Marker"], **listing)
    assert (len(first["DBClusterSnapshots"]), len(rest["DBClusterSnapshots"]), rest.get("Marker")) == (20, 1, None)


# -- deleting and modifying clusters ------------------------------------------------------------------------------


@rules("delete-with-instances", "delete-protected")
def test_a_cluster_with_instances_or_deletion_protection_is_not_deleted(world) -> None:
    with_instance, protected = unique("busy"), unique("protected")
    world.cluster(with_instance, instances=1)
    world.cluster(protected, protected=True)
    refused("InvalidDBClusterStateFault", lambda: world.delete_cluster(with_instance))
    refused("InvalidParameterCombination", lambda: world.delete_cluster(protected))
    assert world.describe_cluster(with_instance)["Status"] == "available"
    assert world.describe_cluster(protected)["Status"] == "available"


@rules("delete-protected")
def test_deletion_protection_turned_on_by_modify_stops_a_delete_until_turned_off(world) -> None:
    """What Publishing relies on: ModifyDBCluster DeletionProtection takes effect at once, without a transitional
    status, and a protected cluster is refused deletion."""
    cluster = unique("later")
    world.cluster(cluster)
    assert world.protect(cluster, True)["DeletionProtection"] is True
    assert world.describe_cluster(cluster)["DeletionProtection"] is True
    assert world.describe_cluster(cluster)["Status"] == "available"
    refused("InvalidParameterCombination", lambda: world.delete_cluster(cluster))
    world.protect(cluster, False)
    world.delete_cluster(cluster)
    assert world.describe_cluster(cluster) is None or world.describe_cluster(cluster)["Status"] == "deleting"


@rules("rename-taken")
def test_a_rename_onto_a_taken_name_is_refused_and_a_rename_changes_the_endpoints(world) -> None:
    first, second, new = unique("first"), unique("second"), unique("new")
    world.cluster(first)
    world.cluster(second)
    refused("DBClusterAlreadyExistsFault", lambda: world.rename(first, second))
    assert world.describe_cluster(first) and world.describe_cluster(second)
    endpoint = world.describe_cluster(first)["Endpoint"]
    with slow(world):
        renamed = world.rename(first, new)
    assert renamed["Status"] == "renaming"
    assert world.describe_cluster(first) is None
    assert world.describe_cluster(new)["Endpoint"] != endpoint


@rules("master-password")
def test_a_new_master_password_of_8_to_41_characters_resets_the_credentials(world) -> None:
    cluster = unique("cluster")
    world.cluster(cluster)
    for password in ("short", "has/slash-in-it", 'has"quote-in-it', "has@at-in-it", "has space-in-it", "x" * 42):
        refused("InvalidParameterValue", lambda: world.reset_password(cluster, password))
    assert world.describe_cluster(cluster)["Status"] == "available"
    with slow(world):
        assert world.reset_password(cluster, "p" * 41)["Status"] == "resetting-master-credentials"


@rules("modify-missing-cluster")
def test_modifying_a_missing_cluster_is_not_found(world) -> None:
    missing = unique("missing")
    refused("DBClusterNotFoundFault", lambda: world.reset_password(missing, "second-password-2"))
    refused("DBClusterNotFoundFault", lambda: world.rename(missing, unique("new")))
    assert world.describe_cluster(missing) is None


@rules("rotation-needs-managed-password")
def test_only_a_password_managed_in_secrets_manager_is_rotated(world) -> None:
    cluster = unique("cluster")
    world.cluster(cluster)
    refused("InvalidParameterCombination", lambda: world.rotate_password(cluster))
    assert world.describe_cluster(cluster)["Status"] == "available"


class slow:
    """A transition delay in the simulator for one block, so that transitional statuses show (the fake's clusters
    show them on the call's answer anyway)."""

    def __init__(self, world) -> None:
        self.world = world

    def __enter__(self) -> None:
        if self.world.name == "simulator":
            self.world.sim.set_delay(5)

    def __exit__(self, *_exc: object) -> None:
        if self.world.name == "simulator":
            self.world.sim.set_delay(0)


# -- simulator only: the lag's control API ---------------------------------------------------------------------------


def test_the_restorable_lag_is_set_through_the_control_api(simulator_world) -> None:
    sim = simulator_world.sim
    assert sim.restorable_lag() == LAG
    assert sim.set_restorable_lag(0) == LAG
    cluster = unique("cluster")
    simulator_world.cluster(cluster)
    latest = simulator_world.describe_cluster(cluster)["LatestRestorableTime"]
    assert abs((datetime.now(timezone.utc) - latest).total_seconds()) < 5
    sim.set_restorable_lag(LAG)

"""A harness that drives the phase machine the way driver.step_once does, against the in-memory RDS.

`restore(spec_changes)` builds an AuroraRestore from a base spec, accepts it (status Pending, startedAt set) and
returns a RestoreRun; `run()` then loops machine.run_step + machine.apply_outcome until a terminal phase, moving
the clock one poll interval per turn, and records every phase visited. Every AWS call lands in `cloud.calls`.
Passwords come from `run.secrets` (the namespace's Secrets) and `run.secrets_manager`, both empty at first.

The target is the harness's own account (ACCOUNT_ID); a spec with source.accountId reads its source from that
account of the same world (`cloud.account(SOURCE_ACCOUNT)`). KMS, EC2 and the target identity are the fakes of
fake_account.py, taken from the account and region each side acts in, as driver.build_context does.
`policies` are the cluster's AuroraRestorePolicies as {name: spec}; by default one allowing everything.
"""

import copy
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from aurora_restore.api.models import AuroraRestoreSpec, AuroraRestoreStatus
from aurora_restore.api.phase import Phase
from aurora_restore.db.connection import Tls
from aurora_restore.machine import accept, apply_outcome, run_aftercare, run_step
from aurora_restore.steps.context import RestoreContext
from aurora_restore.steps.outcomes import Outcome
from aurora_restore_devenv.simulator.databases.tls import ensure_certificates
from aurora_restore.steps.policy import Coverage, NamedPolicy, covers
from aurora_restore.api.policy import AuroraRestorePolicySpec

from .fake_account import FakeEc2, FakeIdentity, FakeKms
from .fake_clone import FakeRam, ram_of
from .fake_rds import ACCOUNT_ID, FakeCloud, FakeLock, FakeRds, InMemoryShareGrant
from .fake_held_secrets import FakeHeldSecrets, FakeRestores
from .fake_secrets import FakeSecrets, FakeSecretsManager

SOURCE_REGION = "eu-west-1"
OTHER_REGION = "us-east-1"
UID = "7d3f9a2e-4c1b-4e8a-9f0d-2b6c8e1a5f37"
START = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)
POLL = timedelta(seconds=30)
SNAPSHOT = "prod-2025-03-01"
TARGET = "staging"
# The customer-managed key of OTHER_REGION that cross-region copies are encrypted with (the `cloud` fixture has it).
KMS_KEY = f"arn:aws:kms:{OTHER_REGION}:{ACCOUNT_ID}:key/1111aaaa-2222-bbbb-3333-cccc4444dddd"
SOURCE_ACCOUNT = "210987654321"
SOURCE_ROLE = f"arn:aws:iam::{SOURCE_ACCOUNT}:role/restore-source"

# The phases of a restore within one region and account that asks for no database access.
SAME_REGION_PHASES = [
    Phase.PENDING,
    Phase.RESOLVING_SNAPSHOT,
    Phase.PREFLIGHT,
    Phase.RESTORING_CLUSTER,
    Phase.CREATING_INSTANCES,
    Phase.CONFIGURING_ACCESS,
    Phase.VERIFYING,
    Phase.PUBLISHING,
    Phase.CLEANING_UP,
    Phase.SUCCEEDED,
]

BASE_SPEC: dict[str, Any] = {
    "source": {"region": SOURCE_REGION, "snapshotIdentifier": SNAPSHOT},
    "target": {"clusterIdentifier": TARGET, "instances": {"count": 2, "instanceClass": "db.r6g.large"}},
}


def merged(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """`base` with `changes` merged in, recursively; a None value removes the key."""
    result = copy.deepcopy(base)
    for key, value in changes.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


# The tag an account owner puts on a cluster the operator did not create, to let a policy allow replacing it.
REPLACEABLE = {"dbrestore.io/replaceable": "true"}
# Allows everything a restore in any namespace may ask for (as `aurora-restore-dev up` installs for the local environment).
PERMISSIVE_POLICY = {
    "namespaces": ["*"], "targets": [{}], "sources": [{}], "roles": ["*"], "secretsManagerSecrets": ["*"],
    "replace": {"allowed": True, "onlyClustersCreatedByOperator": False}, "allowFinalSnapshotSkip": True,
}


class FakePolicies:
    """The policies of the harness's world, covering namespaces as k8s/policies.py does (the same `covers`)."""

    def __init__(self, policies: dict[str, dict[str, Any]], labels: dict[str, str]):
        self.policies = [NamedPolicy(name, AuroraRestorePolicySpec.model_validate(spec))
                         for name, spec in policies.items()]
        self.labels = labels

    def covering(self, namespace: str) -> Coverage:
        covering = [p for p in self.policies if covers(p.spec, namespace, self.labels)]
        return Coverage(covering=covering, others=sorted(p.name for p in self.policies if p not in covering))


@dataclass
class FakeSide:
    """RestoreContext.source / .target over the fakes of one account: the same shape as aws/side.py."""

    region: str
    rds: FakeRds
    kms: FakeKms | None = None
    ec2: FakeEc2 | None = None
    account: FakeIdentity | None = None
    secrets_manager: FakeSecretsManager | None = None
    ram: FakeRam | None = None
    elsewhere: dict[str, "FakeSide"] = field(default_factory=dict)  # the same identity in other regions

    def in_region(self, region: str) -> "FakeSide":
        return self if region == self.region else self.elsewhere[region]


@dataclass
class RestoreRun:
    """One AuroraRestore driven through the machine; status is what the driver would have persisted."""

    spec: AuroraRestoreSpec
    source: FakeRds
    target: FakeRds
    lock: FakeLock
    status: AuroraRestoreStatus
    uid: str = UID
    name: str = "nightly"
    namespace: str = "team-a"
    generation: int = 1
    history_limit: int = 20
    now: datetime = START
    phases: list[Phase] = field(default_factory=lambda: [Phase.PENDING])
    outcomes: list[Outcome] = field(default_factory=list)
    secrets: FakeSecrets | None = None  # None: an empty FakeHeldSecrets of `namespace`
    restores: FakeRestores = field(default_factory=FakeRestores)  # the other AuroraRestores, by name
    secrets_manager: FakeSecretsManager = field(default_factory=FakeSecretsManager)
    db_tls: Tls = field(default_factory=Tls)
    resource: dict[str, Any] | None = None  # None: the AuroraRestore object built from name, namespace and uid
    policies: dict[str, dict[str, Any]] = field(default_factory=lambda: {"permissive": PERMISSIVE_POLICY})
    namespace_labels: dict[str, str] = field(default_factory=dict)
    # None: the fakes of the account and region each side acts in (source KMS: the source's; the rest: the target's;
    # staging: the target account in the source region, where a shared snapshot is copied before crossing regions)
    staging: FakeRds | None = None
    staging_kms: FakeKms | None = None
    source_kms: FakeKms | None = None
    target_kms: FakeKms | None = None
    target_ec2: FakeEc2 | None = None
    target_account: FakeIdentity | None = None
    # The share grants' store, by (snapshot ARN, account); pass one dict to several runs to share it.
    share_counts: dict[str, dict[str, str]] = field(default_factory=dict)

    def __post_init__(self):
        if self.secrets is None:
            self.secrets = FakeHeldSecrets(self.namespace)
        self.staging = self.staging or self.target.cloud.rds(self.source.region)
        self.staging_kms = self.staging_kms or self.target.cloud.kms(self.source.region)
        self.source_kms = self.source_kms or self.source.cloud.kms(self.source.region)
        self.target_kms = self.target_kms or self.target.cloud.kms(self.target.region)
        self.target_ec2 = self.target_ec2 or self.target.cloud.ec2(self.target.region)
        self.target_account = self.target_account or FakeIdentity(self.target.cloud, self.target.region)
        if self.resource is None:
            self.resource = {
                "apiVersion": "dbrestore.io/v1alpha1",
                "kind": "AuroraRestore",
                "metadata": {"name": self.name, "namespace": self.namespace, "uid": self.uid},
            }

    @property
    def cloud(self) -> FakeCloud:
        return self.target.cloud

    @property
    def phase(self) -> Phase:
        return self.status.phase

    def context(self, status: AuroraRestoreStatus | None = None) -> RestoreContext:
        return RestoreContext(
            name=self.name,
            namespace=self.namespace,
            uid=self.uid,
            spec=self.spec,
            status=status or self.status,
            source=FakeSide(self.source.region, self.source, kms=self.source_kms,
                            ram=ram_of(self.source.cloud, self.source.region)),
            target=FakeSide(
                self.target.region, self.target, kms=self.target_kms, ec2=self.target_ec2,
                account=self.target_account, secrets_manager=self.secrets_manager,
                ram=ram_of(self.target.cloud, self.target.region),
                elsewhere={self.source.region: FakeSide(self.source.region, self.staging, kms=self.staging_kms,
                                                        account=self.target_account)},
            ),
            target_lock=self.lock,
            now=self.now,
            default_tags={"cost-center": "data"},
            policies=FakePolicies(self.policies, self.namespace_labels),
            secrets=self.secrets,
            db_tls=self.db_tls,
            resource=self.resource,
            share_grants=lambda arn, account: InMemoryShareGrant(self.share_counts, arn, account),
            restores=self.restores,
        )

    def step(self) -> Outcome:
        """One turn of the driver: run the phase's step and apply its outcome."""
        assert not self.phase.is_terminal, f"the restore already ended in {self.phase}"
        outcome = run_step(self.context())
        status = apply_outcome(self.status, outcome, self.now, self.generation, self.history_limit)
        self.status = status
        self.outcomes.append(outcome)
        if status.phase != self.phases[-1]:
            self.phases.append(status.phase)
        if status.phase.is_terminal:
            self.lock.release()
        self.now += POLL
        return outcome

    def crash_then_step(self) -> Outcome:
        """The operator acts, dies before persisting the status, and the next operator runs the step again."""
        run_step(self.context())
        return self.step()

    def run(self, max_steps: int = 100, crash_every_step: bool = False) -> AuroraRestoreStatus:
        for _ in range(max_steps):
            if self.phase.is_terminal:
                return self.status
            self.crash_then_step() if crash_every_step else self.step()
        if self.phase.is_terminal:
            return self.status
        raise AssertionError(f"no terminal phase after {max_steps} steps; stuck in {self.phase}: {self.status.message}")

    def settle_aftercare(self, max_turns: int = 20) -> None:
        """A finished restore's aftercare, one turn per POLL (with its outcome applied), until it owes nothing."""
        for _ in range(max_turns):
            outcome = run_aftercare(self.context())
            if outcome is None:
                return
            self.status = apply_outcome(self.status, outcome, self.now, self.generation, self.history_limit)
            self.now += POLL

    def send_first_rename(self) -> None:
        """A Replace run to the moment the swap has renamed the existing target away (and recorded that it
        started), the new cluster not yet renamed in."""
        self.run_until(Phase.SWAPPING_TARGET)
        self.step()  # the swap records that it starts
        self.step()  # the first rename: the target becomes <target>-previous-<uid8>
        assert self.cloud.calls_to("rename_cluster"), "the first rename was not sent"

    def run_until(self, phase: Phase, max_steps: int = 100) -> None:
        for _ in range(max_steps):
            if self.phase == phase:
                return
            assert not self.phase.is_terminal, f"ended in {self.phase} ({self.status.message}) before {phase}"
            self.step()
        raise AssertionError(f"never reached {phase}; stuck in {self.phase}: {self.status.message}")


@pytest.fixture(scope="session")
def stand_in_ca_bundle(tmp_path_factory) -> str:
    """A loadable CA bundle standing in for the RDS one the image carries (Settings() needs one to start)."""
    return str(ensure_certificates(tmp_path_factory.mktemp("ca")).ca_certificate)


@pytest.fixture(autouse=True)
def image_ca_bundle(monkeypatch, stand_in_ca_bundle):
    monkeypatch.setenv("AURORA_RESTORE_DB_CA_BUNDLE", stand_in_ca_bundle)


@pytest.fixture
def cloud() -> FakeCloud:
    """The target account; OTHER_REGION's KMS holds KMS_KEY."""
    cloud = FakeCloud(ticks=1)
    cloud.kms(OTHER_REGION).add_key(KMS_KEY)
    return cloud


@pytest.fixture
def source(cloud: FakeCloud) -> FakeRds:
    """The source region, holding SNAPSHOT (unencrypted, available) of cluster "prod"."""
    rds = cloud.rds(SOURCE_REGION)
    rds.add_snapshot(SNAPSHOT, "prod")
    return rds


@pytest.fixture
def other_region(cloud: FakeCloud) -> FakeRds:
    return cloud.rds(OTHER_REGION)


@pytest.fixture
def lock_holders() -> dict[str, str]:
    return {}


@pytest.fixture
def restore(cloud: FakeCloud, source: FakeRds, lock_holders: dict[str, str]):
    """Build a RestoreRun from BASE_SPEC merged with `changes`; accepted, not yet stepped."""

    def build(changes: dict[str, Any] | None = None, *, uid: str = UID, name: str = "nightly", **fields) -> RestoreRun:
        spec = AuroraRestoreSpec.model_validate(merged(BASE_SPEC, changes or {}))
        source_cloud = cloud.account(spec.source.account_id) if spec.source.account_id else cloud
        target = cloud.rds(spec.target_region)
        lock = FakeLock(lock_holders, f"{spec.target_region}/{spec.target.cluster_identifier}", f"team-a/{name}")
        status = accept(AuroraRestoreStatus(), START, fields.get("generation", 1))
        return RestoreRun(
            spec=spec,
            source=source_cloud.rds(spec.source.region),
            target=target,
            lock=lock,
            status=status,
            uid=uid,
            name=name,
            **fields,
        )

    return build

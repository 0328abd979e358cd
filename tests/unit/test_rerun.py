"""Running a step again after it already acted (the operator died before the status was written) is harmless.

A crash is simulated by running the current step, throwing its outcome away, and running it again from the same
pre-step status, as a restarted operator would. The AWS side must end up exactly as without the crash.
"""

from collections import Counter

import pytest

from aurora_restore.api.phase import Phase
from aurora_restore.machine import run_step
from aurora_restore.steps.outcomes import Fail

from .conftest import REPLACEABLE, KMS_KEY, OTHER_REGION, TARGET, UID
EVERYTHING = {
    "target": {"region": OTHER_REGION, "instances": {"count": 3}, "deletionProtection": True},
    "copy": {"kmsKeyId": KMS_KEY},
    "existingTarget": {"policy": "Replace"},
}


def mutations(cloud) -> Counter:
    return Counter(c.action for c in cloud.mutations if c.error is None)


def aws_state(rds) -> dict:
    return {
        "clusters": sorted(rds.clusters),
        "instances": sorted(rds.instances),
        "snapshots": sorted(rds.snapshots),
    }


EXPECTED_MUTATIONS = Counter(
    {
        "delete_instance": 2,
        "delete_cluster": 1,
        "rename_cluster": 2,
        "add_tags": 1,
        "copy_snapshot": 1,
        "restore_cluster_from_snapshot": 1,
        "create_instance": 3,
        "delete_snapshot": 1,
        "modify_cluster": 1,  # DeletionProtection, in Publishing: once, crash or not
    }
)


@pytest.mark.parametrize("crash", [False, True], ids=["no-crash", "crash-after-every-step"])
@pytest.mark.parametrize("ticks", [0, 1, 3])
def test_a_crash_after_every_step_creates_no_duplicates(restore, cloud, ticks, crash):
    cloud.ticks = ticks
    run = restore(EVERYTHING)
    run.target.add_cluster(TARGET, tags=REPLACEABLE, instances=2)
    status = run.run(crash_every_step=crash)

    assert status.phase == Phase.SUCCEEDED, status.message
    assert mutations(cloud) == EXPECTED_MUTATIONS
    assert [c for c in cloud.mutations if c.error] == []  # never asked AWS for something it refused
    assert aws_state(run.target) == {
        "clusters": [TARGET],
        "instances": [f"{TARGET}-7d3f9a2e-1", f"{TARGET}-7d3f9a2e-2", f"{TARGET}-7d3f9a2e-3"],
        "snapshots": [f"{TARGET}-final-7d3f9a2e"],
    }
    assert [i.writer for i in status.instances] == [True, False, False]
    assert status.replaced_cluster.final_snapshot_identifier == f"{TARGET}-final-7d3f9a2e"
    assert run.target.clusters[TARGET]["DeletionProtection"] is True


@pytest.mark.parametrize(
    "phase",
    [
        Phase.COPYING_SNAPSHOT,
        Phase.RESTORING_CLUSTER,
        Phase.CREATING_INSTANCES,
        Phase.SWAPPING_TARGET,
        Phase.RETIRING_PREVIOUS,
        Phase.CLEANING_UP,
    ],
)
def test_running_a_step_twice_from_the_same_status_acts_once(restore, cloud, phase):
    run = restore(EVERYTHING)
    run.target.add_cluster(TARGET, tags=REPLACEABLE, instances=2)
    run.run_until(phase)
    if phase == Phase.SWAPPING_TARGET:
        run.step()  # the swap's first turn only records that it starts
    before = run.status

    run_step(run.context(before))
    acted = mutations(cloud)
    assert acted, f"{phase} made no AWS change, so this test proves nothing"
    outcome = run_step(run.context(before))

    assert not isinstance(outcome, Fail), outcome
    assert mutations(cloud) == acted
    assert [c for c in cloud.mutations if c.error] == []
    assert run.run().phase == Phase.SUCCEEDED


def test_a_crash_right_after_the_restore_call_does_not_restore_twice(restore, cloud):
    run = restore()
    run.run_until(Phase.RESTORING_CLUSTER)
    run.crash_then_step()
    run.crash_then_step()
    assert run.run().phase == Phase.SUCCEEDED
    assert len(cloud.calls_to("restore_cluster_from_snapshot")) == 1


def test_a_restart_with_a_status_from_before_the_restore_finds_its_own_cluster(restore, cloud):
    """The status was lost after RestoreDBClusterFromSnapshot: RestoringCluster runs again, sees our tag."""
    run = restore({"existingTarget": {"policy": "Fail"}})
    run.run_until(Phase.RESTORING_CLUSTER)
    before = run.status
    run.run_until(Phase.CREATING_INSTANCES)
    run.status = before  # the operator comes back with a stale status
    status = run.run()
    assert status.phase == Phase.SUCCEEDED, status.message
    assert len(cloud.calls_to("restore_cluster_from_snapshot")) == 1
    assert not cloud.calls_to("delete_cluster")


def test_a_restart_during_cleanup_does_not_fail_on_the_already_deleted_copy(restore, cloud):
    run = restore(EVERYTHING)
    run.run_until(Phase.CLEANING_UP)
    before = run.status
    run.step()
    assert run.phase == Phase.SUCCEEDED
    run.status = before
    assert run.run().phase == Phase.SUCCEEDED
    assert len(cloud.calls_to("delete_snapshot")) == 1
    assert f"aurora-restore-{UID}" not in run.target.snapshots

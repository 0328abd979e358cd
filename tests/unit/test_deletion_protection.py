"""target.deletionProtection is turned on in Publishing, once the cluster is verified and has its final name, so a
failure or a cancel before then can still delete what the restore made; a cluster someone protected is never
torn down halfway (its instances kept), and the operator never turns protection off."""

import pytest

from aurora_restore.api.phase import Phase
from aurora_restore.machine import left_in_aws

from .conftest import PERMISSIVE_POLICY, REPLACEABLE, TARGET, UID
from .fake_rds import aws_error
from .test_names_and_ownership import cancel

PROTECTED = {"target": {"deletionProtection": True}}
REPLACE = {"existingTarget": {"policy": "Replace"}}
TEMPORARY, PREVIOUS = f"{TARGET}-restore-{UID[:8]}", f"{TARGET}-previous-{UID[:8]}"


def protection_calls(cloud) -> list:
    return [call for call in cloud.calls_to("modify_cluster") if "DeletionProtection" in call.params]


def test_a_direct_restore_is_created_unprotected_and_protected_in_publishing(restore, cloud):
    run = restore(PROTECTED)
    status = run.run()
    assert status.phase == Phase.SUCCEEDED, status.message
    [restored] = cloud.calls_to("restore_cluster_from_snapshot")
    assert "DeletionProtection" not in restored.params
    [protect] = protection_calls(cloud)
    assert protect.params == {"identifier": TARGET, "DeletionProtection": True}
    assert cloud.calls.index(protect) > cloud.calls.index(cloud.calls_to("create_instance")[-1])
    assert Phase.PUBLISHING in run.phases
    assert run.target.clusters[TARGET]["DeletionProtection"] is True


def test_a_replace_protects_the_new_cluster_after_the_swap_under_the_target_name(restore, cloud):
    run = restore({**PROTECTED, **REPLACE})
    run.target.add_cluster(TARGET, tags=REPLACEABLE, instances=1)
    assert run.run().phase == Phase.SUCCEEDED
    [protect] = protection_calls(cloud)
    assert protect.params["identifier"] == TARGET
    assert cloud.calls.index(protect) > max(cloud.calls.index(call) for call in cloud.calls_to("rename_cluster"))
    assert run.target.clusters[TARGET]["DeletionProtection"] is True


def test_a_failure_before_verification_deletes_the_temporary_cluster_of_a_protected_replace(restore, cloud):
    """Before, the temporary cluster was created protected: AWS refused its deletion after its instances were gone,
    and the cleanup stopped there."""
    run = restore({**PROTECTED, **REPLACE})
    run.target.add_cluster(TARGET, tags=REPLACEABLE, instances=1)
    run.run_until(Phase.CREATING_INSTANCES)
    run.target.fail("create_instance", aws_error("InvalidParameterCombination", "no such class",
                                                 action="create_instance"))
    status = run.run()
    assert status.phase == Phase.FAILED
    assert "cleanup stopped" not in status.message
    assert TEMPORARY not in run.target.clusters
    assert TARGET in run.target.clusters and not protection_calls(cloud)


def test_a_previous_cluster_protected_after_preflight_is_left_whole_and_the_restore_succeeds(restore, cloud):
    run = restore(REPLACE)
    run.target.add_cluster(TARGET, tags=REPLACEABLE, instances=2)
    run.run_until(Phase.RETIRING_PREVIOUS)
    run.target.clusters[PREVIOUS]["DeletionProtection"] = True  # the owner protects it mid-swap
    status = run.run()
    assert status.phase == Phase.SUCCEEDED, status.message
    assert not cloud.calls_to("delete_instance") and not cloud.calls_to("delete_cluster")
    assert PREVIOUS in run.target.clusters
    assert len(run.target.list_cluster_instances(PREVIOUS)) == 2
    assert "deletion protection on" in status.replaced_cluster.retirement_error
    assert status.replaced_cluster.deleted_at is None
    assert left_in_aws(status) == f"previous cluster {PREVIOUS} (status.replacedCluster.retirementError)"


def test_a_cancel_leaves_a_cluster_someone_protected_with_its_instances_and_says_why(restore, cloud):
    run = restore()
    run.run_until(Phase.CONFIGURING_ACCESS)
    run.target.clusters[TARGET]["DeletionProtection"] = True
    run.status = run.status.model_copy(update={"phase": Phase.CREATING_INSTANCES})
    with pytest.raises(AssertionError, match="not cancelled: cancelling: .* has deletion protection on"):
        cancel(run)  # keeps waiting, as a cancel does, until protection is off or the skip-cleanup annotation
    assert run.phase == Phase.CANCELLING
    assert not cloud.calls_to("delete_instance") and not cloud.calls_to("delete_cluster")
    run.target.clusters[TARGET]["DeletionProtection"] = False  # the owner lets it go
    assert cancel(run).phase == Phase.CANCELLED
    assert TARGET not in run.target.clusters


def test_deletion_policy_delete_with_deletion_protection_is_refused_in_preflight(restore, cloud):
    status = restore({**PROTECTED, "deletionPolicy": "Delete"}).run()
    assert (status.phase, status.failure.reason) == (Phase.FAILED, "DeletionPolicyProtected")
    assert "turn one of them off" in status.failure.message
    assert cloud.mutations == []


def test_a_dry_run_plans_the_protection_in_publishing(restore):
    status = restore({**PROTECTED, "dryRun": True}).run()
    assert status.phase == Phase.PLANNED, status.message
    [planned] = [step for step in status.plan.steps if "DeletionProtection" in step.parameters]
    assert (planned.phase, planned.action, planned.parameters["DBClusterIdentifier"]) == (
        Phase.PUBLISHING, "ModifyDBCluster", TARGET)


def test_a_cancel_in_retiring_previous_keeps_a_protected_previous_cluster_and_ends(restore, cloud):
    run = restore(REPLACE)
    run.target.add_cluster(TARGET, tags=REPLACEABLE, instances=1)
    run.run_until(Phase.RETIRING_PREVIOUS)
    run.target.clusters[PREVIOUS]["DeletionProtection"] = True
    status = cancel(run)
    assert status.phase == Phase.CANCELLED
    assert f"the previous cluster {PREVIOUS} is kept" in status.message and "deletion protection on" in status.message
    assert PREVIOUS in run.target.clusters and not cloud.calls_to("delete_instance")
    assert TARGET in run.target.clusters  # the new cluster, swapped in before the cancel


def test_protection_turned_on_between_the_describe_and_the_delete_is_said_the_same_way(restore, cloud, monkeypatch):
    """The pass saw the previous cluster unprotected and deleted its instances; by its DeleteDBCluster someone
    had protected it: AWS refuses, and the restore records it as the protection it is, not as a failure."""
    from .fake_rds import FakeRds

    run = restore(REPLACE)
    run.target.add_cluster(TARGET, tags=REPLACEABLE, instances=1)
    delete = FakeRds.delete_cluster

    def protect_first(self, identifier, *args, **kwargs):
        self.clusters[identifier.lower()]["DeletionProtection"] = True
        return delete(self, identifier, *args, **kwargs)

    monkeypatch.setattr(FakeRds, "delete_cluster", protect_first)
    status = run.run()
    assert status.phase == Phase.SUCCEEDED, status.message
    assert [call.error for call in cloud.calls_to("delete_cluster")] == ["InvalidParameterCombination"]
    assert "deletion protection on" in status.replaced_cluster.retirement_error
    assert PREVIOUS in run.target.clusters


def test_a_broken_new_cluster_is_kept_when_there_is_no_previous_cluster_to_give_the_name_back(restore, cloud):
    run = restore(REPLACE)
    run.target.add_cluster(TARGET, tags=REPLACEABLE, instances=1)
    run.send_first_rename()
    while len(cloud.calls_to("rename_cluster")) < 2:  # the first rename settles; the second one is sent
        run.step()
    run.step()  # the new cluster carries the target identifier
    del run.target.clusters[PREVIOUS]  # its owner deleted the previous cluster meanwhile
    run.target.instances = {k: v for k, v in run.target.instances.items()
                            if v.get("DBClusterIdentifier") != PREVIOUS}
    run.target.put_in_status("cluster", TARGET, "incompatible-network")
    status = run.run()
    assert status.phase == Phase.FAILED
    assert not cloud.calls_to("delete_cluster") and TARGET in run.target.clusters


def test_delete_cluster_after_fails_the_restore_on_a_cluster_someone_protected(restore, cloud):
    run = restore({"output": {"snapshot": {"identifier": "orders-masked-{date}", "deleteClusterAfter": True}}},
                  policies={"p": {**PERMISSIVE_POLICY}})
    run.run_until(Phase.CLEANING_UP)
    run.target.clusters[TARGET]["DeletionProtection"] = True
    status = run.run()
    assert (status.phase, status.failure.reason, status.failure.phase) == (
        Phase.FAILED, "DeletionProtected", Phase.CLEANING_UP)
    assert TARGET in run.target.clusters and not cloud.calls_to("delete_instance")

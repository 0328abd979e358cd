"""A rename that took effect while its answer was lost (a 5xx or a broken connection after the work was done):
botocore's retry of ModifyDBCluster finds the old name gone (DBClusterNotFoundFault). Found by the chaos suite
(tests/chaos), where it failed a Replace in SwappingTarget and rolled the swap back."""

from aurora_restore.api.phase import Phase
from aurora_restore.aws.rds import tags_of
from aurora_restore.steps.context import RESTORE_UID_TAG

from .conftest import REPLACEABLE, TARGET, UID
from .fake_rds import aws_error


def lose_answers_of_renames(rds, times: int) -> list[tuple[str, str]]:
    """The next `times` renames happen, then answer as the retry after a lost answer does: not found."""
    real = rds.rename_cluster
    lost: list[tuple[str, str]] = []

    def rename_cluster(identifier: str, new_identifier: str):
        answer = real(identifier, new_identifier)
        if len(lost) < times:
            lost.append((identifier, new_identifier))
            raise aws_error("DBClusterNotFoundFault", f"DBCluster {identifier} not found.", action="rename_cluster",
                            region=rds.region)
        return answer

    rds.rename_cluster = rename_cluster
    return lost


def test_both_renames_of_a_swap_whose_answers_were_lost_still_complete_it(restore):
    run = restore({"existingTarget": {"policy": "Replace"}})
    existing = run.target.add_cluster(TARGET, tags=REPLACEABLE, instances=1)
    run.run_until(Phase.SWAPPING_TARGET)
    lost = lose_answers_of_renames(run.target, times=2)
    status = run.run()
    assert status.phase == Phase.SUCCEEDED, status.message
    assert [old for old, _ in lost] == [TARGET, f"{TARGET}-restore-7d3f9a2e"]
    assert tags_of(run.target.clusters[TARGET])[RESTORE_UID_TAG] == UID
    assert run.target.clusters[TARGET]["DbClusterResourceId"] != existing["DbClusterResourceId"]


def test_a_not_found_rename_whose_new_name_does_not_exist_still_fails(restore):
    run = restore({"existingTarget": {"policy": "Replace"}})
    run.target.add_cluster(TARGET, tags=REPLACEABLE, instances=1)
    run.run_until(Phase.SWAPPING_TARGET)

    def rename_cluster(identifier: str, new_identifier: str):
        raise aws_error("DBClusterNotFoundFault", f"DBCluster {identifier} not found.", action="rename_cluster",
                        region=run.target.region)

    run.target.rename_cluster = rename_cluster
    status = run.run()
    assert status.phase == Phase.FAILED
    assert status.failure.reason == "DBClusterNotFoundFault" and status.failure.phase == Phase.SWAPPING_TARGET

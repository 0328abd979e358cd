"""The chaos suite's checks themselves: each finds what it is there to find (no environment needed)."""

from types import SimpleNamespace

from chaos_invariants import EDGES, event_problems, history_problems, mutation_duplicates

from aurora_restore.api.phase import Phase

OPERATOR = "Boto3/1.44.8 aurora-restore-operator pod/chaos-operator-a"
REPLACE = ["Pending", "ResolvingSnapshot", "Preflight", "RestoringCluster", "CreatingInstances", "ConfiguringAccess",
           "Verifying", "SwappingTarget", "RetiringPrevious", "Publishing", "CleaningUp", "Succeeded"]


def history(*phases: str) -> list[dict]:
    return [{"phase": phase} for phase in phases]


def test_the_paths_of_the_phase_graph_pass_and_others_do_not():
    assert history_problems(history(*REPLACE), 20) == []
    assert history_problems(history("Pending", "ResolvingSnapshot", "Preflight", "SharingSnapshot", "CopyingSnapshot",
                                    "RestoringCluster", "CleaningUpAfterFailure", "Failed"), 20) == []
    assert history_problems(history("Pending", "Cancelling", "Cancelled"), 20) == []
    skipped = history_problems(history("Pending", "Preflight"), 20)
    assert skipped and "Pending -> Preflight" in skipped[0]
    assert history_problems(history("Succeeded", "CleaningUp"), 20)
    assert history_problems(history("ResolvingSnapshot", "Preflight"), 20)  # not from Pending, and not cut off
    assert history_problems(history("ResolvingSnapshot", "Preflight"), 2) == []  # cut off by the history limit
    assert (Phase.CLEANING_UP_AFTER_FAILURE, Phase.CANCELLING) not in EDGES
    assert (Phase.FAILED, Phase.CLEANING_UP_AFTER_FAILURE) not in EDGES


def test_a_transition_claimed_by_two_events_is_found_and_a_missing_one_counted():
    status = {"history": history("Pending", "ResolvingSnapshot", "CleaningUpAfterFailure", "Failed"),
              "failure": {"reason": "SnapshotNotFound"}}
    events = [SimpleNamespace(reason=reason) for reason in ("Accepted", "SnapshotNotFound", "SnapshotNotFound")]
    assert event_problems(status, events) == ([], 1)  # ResolvingSnapshot's Event is missing: not a duplicate
    problems, _ = event_problems(status, events + [SimpleNamespace(reason="Accepted")])
    assert problems == ["2 Events claim the transition 'Accepted', the history has 1"]


def call(action: str, status: int = 200, fault: str | None = None, agent: str = OPERATOR, **parameters) -> dict:
    return {"action": action, "status": status, "fault": fault, "user_agent": agent, "region": "us-east-1",
            "account": "123456789012", "parameters": parameters}


def test_a_mutation_that_took_effect_twice_is_a_duplicate_its_refused_retry_is_not():
    instance = {"DBInstanceIdentifier": "t-1"}
    once = [call("CreateDBInstance", 500, "InternalFailure:applied", **instance),
            call("CreateDBInstance", 400, **instance),  # DBInstanceAlreadyExists: the retry met the first try
            call("CreateDBInstance", 400, "Throttling", **instance),
            call("CreateDBInstance", 200, agent="Boto3/1.44.8 tests", **instance)]  # the test's own call
    assert mutation_duplicates(once) == []
    assert mutation_duplicates(once + [call("CreateDBInstance", **instance)]) == [
        "CreateDBInstance us-east-1 123456789012 t-1: took effect 2 times"]
    rename = {"DBClusterIdentifier": "t", "NewDBClusterIdentifier": "t-previous-1"}
    assert mutation_duplicates([call("ModifyDBCluster", **rename), call("ModifyDBCluster", 500,
                                                                        "InternalFailure:applied", **rename)])

"""The audit trail end to end: every call the operator sent that is not read-only (the simulator's request log,
found by the operator's User-Agent) has exactly one audit line per SDK invocation (retries share an invocation id
and make one line), and status.audit holds the newest of them."""

import re

from restores import create_restore, make_source, wait_for_phase

from aurora_restore.obs.audit import AUDITED_OPERATIONS, STATUS_AUDIT_LIMIT

AUDIT_LINE = re.compile(r"aurora_restore\.audit\s.*?\baudit (?P<fields>action=\S+.*)$")


def audit_lines(log_text: str) -> list[dict[str, str]]:
    """The operator's audit lines (text format: `audit action=... resource=... result=... ...`), oldest first."""
    lines = []
    for line in log_text.splitlines():
        match = AUDIT_LINE.search(line)
        if match:
            lines.append(dict(field.split("=", 1) for field in match.group("fields").split()))
    return lines


# Read-only by name: Describe*, List*, Get*. STS's AssumeRole and AssumeRoleWithWebIdentity (credentials for the
# operator's identities) and GetCallerIdentity change nothing either. Every other call must be audited.
READ_ONLY_PREFIXES = ("Describe", "List", "Get")
READ_ONLY_STS_ACTIONS = {"AssumeRole", "AssumeRoleWithWebIdentity", "GetCallerIdentity"}


def is_read_only(call: dict) -> bool:
    action = call["action"] or ""
    if call["service"] == "sts" and action in READ_ONLY_STS_ACTIONS:
        return True
    return action.startswith(READ_ONLY_PREFIXES)


def operator_mutating_invocations(calls: list[dict], pod_name: str) -> dict[str, list[dict]]:
    """Every request the operator (by its User-Agent, which names its pod) sent that is not read-only, grouped by
    invocation id, attempts in order. Not filtered by AUDITED_OPERATIONS: a mutating call missing from that table
    shows up here without an audit line."""
    user_agent = f"aurora-restore-operator pod/{pod_name}"
    grouped: dict[str, list[dict]] = {}
    for call in calls:
        if user_agent in call["user_agent"] and not is_read_only(call):
            assert call["invocation_id"], call  # botocore sends the header on every attempt
            grouped.setdefault(call["invocation_id"], []).append(call)
    return grouped


def is_subsequence(part: list, whole: list) -> bool:
    remaining = iter(whole)
    return all(item in remaining for item in part)


def test_audit_lines_match_the_simulators_request_log_per_invocation(
    api_client, aws, operator, namespace, uniq, simulator, aws_calls
):
    source_key = aws.client("kms", region_name="us-east-1").create_key()["KeyMetadata"]["KeyId"]
    target_kms = aws.client("kms", region_name="us-west-2")
    target_kms.create_alias(AliasName=f"alias/audit-{uniq}", TargetKeyId=target_kms.create_key()["KeyMetadata"]["KeyId"])
    make_source(aws.client("rds", region_name="us-east-1"), f"src-{uniq}", [f"snap-{uniq}"], kms_key_id=source_key)
    # Throttled twice, then answered: botocore's retries, one invocation. The first deletion of the copy stays
    # throttled through all 4 attempts (one failed invocation); the operator's next turn deletes it.
    simulator.add_fault("rds", "CopyDBClusterSnapshot", "Throttling", count=2, region="us-west-2")
    simulator.add_fault("rds", "CreateDBInstance", "Throttling", count=1, region="us-west-2")
    simulator.add_fault("rds", "DeleteDBClusterSnapshot", "Throttling", count=4, region="us-west-2")

    restore = create_restore(api_client, namespace, "audited", {
        "source": {"region": "us-east-1", "snapshotIdentifier": f"snap-{uniq}"},
        "target": {"region": "us-west-2", "clusterIdentifier": f"tgt-{uniq}", "instances": {"count": 1}},
        "copy": {"kmsKeyId": f"alias/audit-{uniq}"},
    })
    uid = restore["metadata"]["uid"]
    status = wait_for_phase(api_client, namespace, "audited", {"Succeeded", "Failed"}, timeout=240)["status"]
    assert status["phase"] == "Succeeded", status

    lines = audit_lines(operator.log_path.read_text())
    calls = aws_calls.calls()
    assert any(f"aurora-restore-operator pod/{operator.pod_name}" in call["user_agent"] for call in calls)
    invocations = operator_mutating_invocations(calls, operator.pod_name)
    assert {(call["service"], call["action"]) for attempts in invocations.values() for call in attempts} <= set(
        AUDITED_OPERATIONS)  # the table knows every mutating call the operator made
    assert lines and all(line["uid"] == uid for line in lines)  # every call was made in one of its turns
    assert [line["invocationId"] for line in lines if line["invocationId"] not in invocations] == []
    assert {line["invocationId"] for line in lines} == set(invocations)
    assert len(lines) == len(invocations)  # one line per invocation, however many attempts

    for line in lines:
        attempts = invocations[line["invocationId"]]
        assert {f"{call['service']}:{call['action']}" for call in attempts} == {line["action"]}
        assert [call["attempt"] for call in attempts] == list(range(1, len(attempts) + 1))
        assert int(line["attempts"]) == len(attempts)
        assert line["region"] == attempts[-1]["region"]
        last = attempts[-1]
        if last["fault"] and last["fault"] != "Slow":
            assert line["result"] == last["fault"], (line, attempts)
        elif last["status"] < 400:
            assert line["result"] == "Success", (line, attempts)
        else:  # moto refused it: its error code is the result
            assert line["result"] != "Success", (line, attempts)

    by_action = {}
    for line in lines:
        by_action.setdefault(line["action"], []).append(line)
    [copy_line] = [line for line in by_action["rds:CopyDBClusterSnapshot"] if line["result"] == "Success"]
    assert int(copy_line["attempts"]) == 3 and copy_line["resource"].endswith(f":cluster-snapshot:aurora-restore-{uid}")
    assert copy_line["resource"].startswith("arn:aws:rds:us-west-2:")
    # The control API finds one invocation's attempts by its id: the two throttled ones and the answered one.
    attempts = simulator.calls(invocation_id=copy_line["invocationId"])
    assert [(call["attempt"], call["fault"]) for call in attempts] == [(1, "Throttling"), (2, "Throttling"), (3, None)]
    assert simulator.invocations(service="rds", action="CopyDBClusterSnapshot")[copy_line["invocationId"]] == attempts
    assert [line["result"] for line in by_action["rds:CreateDBInstance"]] == ["Success"]
    assert by_action["rds:CreateDBInstance"][0]["attempts"] == "2"
    deletions = [(line["result"], line["attempts"]) for line in by_action["rds:DeleteDBClusterSnapshot"]]
    assert deletions[0] == ("Throttling", "4") and deletions[-1][0] == "Success"
    assert by_action["rds:RestoreDBClusterFromSnapshot"][0]["resource"].endswith(f":cluster:tgt-{uniq}")

    # status.audit: the newest entries, in order; a turn whose status write was refused (the resource changed
    # since it was read) has its entries in the log only.
    logged = [(line["action"], line["resource"], line["result"]) for line in lines]
    kept = [(entry["action"], entry["resource"], entry["result"]) for entry in status["audit"]]
    assert 0 < len(kept) <= STATUS_AUDIT_LIMIT
    assert kept[-1] == logged[-1] and is_subsequence(kept, logged)
    if "changed since it was read" not in operator.log_path.read_text():
        assert kept == logged[-STATUS_AUDIT_LIMIT:]

"""Restores end to end: a real apiserver, the operator as a process, AWS simulated over HTTP."""

from datetime import datetime, timedelta, timezone

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from restores import (
    CallWindow,
    create_restore,
    delete_and_wait_gone,
    events_for,
    get_restore,
    make_source,
    tags,
    wait_for_phase,
    wait_until,
)

from aurora_restore.api import GROUP, PLURAL, VERSION
from aurora_restore_devenv.environment import OPERATOR_ROLE_ARN

EXPECTED_SAME_REGION_PHASES = [
    "Pending",
    "ResolvingSnapshot",
    "Preflight",
    "RestoringCluster",
    "CreatingInstances",
    "ConfiguringAccess",
    "Verifying",
    "Publishing",
    "CleaningUp",
    "Succeeded",
]


def test_same_region_restore(api_client, aws, operator, namespace, uniq, aws_calls):
    rds = aws.client("rds", region_name="us-east-1")
    make_source(rds, f"src-{uniq}", [f"snap-{uniq}"])

    create_restore(
        api_client,
        namespace,
        "same-region",
        {
            "source": {"region": "us-east-1", "snapshotIdentifier": f"snap-{uniq}"},
            "target": {
                "clusterIdentifier": f"tgt-{uniq}",
                "instances": {"count": 2, "instanceClass": "db.r6g.large"},
                "tags": {"team": "data"},
            },
        },
    )
    restore = wait_for_phase(api_client, namespace, "same-region", {"Succeeded", "Failed"})
    status = restore["status"]
    assert status["phase"] == "Succeeded", status
    assert [entry["phase"] for entry in status["history"]] == EXPECTED_SAME_REGION_PHASES
    assert all(entry.get("endedAt") for entry in status["history"])
    assert status["snapshot"]["identifier"] == f"snap-{uniq}"
    assert status["cluster"]["identifier"] == f"tgt-{uniq}" and status["cluster"]["endpoint"]
    assert [i["identifier"] for i in status["instances"]] == [f"tgt-{uniq}-1", f"tgt-{uniq}-2"]
    assert [i["writer"] for i in status["instances"]] == [True, False]
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Ready"]["status"] == "True" and conditions["Progressing"]["status"] == "False"
    assert conditions["Ready"]["observedGeneration"] == restore["metadata"]["generation"]
    assert "copiedSnapshot" not in status

    cluster = rds.describe_db_clusters(DBClusterIdentifier=f"tgt-{uniq}")["DBClusters"][0]
    assert cluster["Status"] == "available"
    cluster_tags = tags(rds, cluster["DBClusterArn"])
    assert cluster_tags["dbrestore.io/restore-uid"] == restore["metadata"]["uid"]
    assert cluster_tags["team"] == "data"
    instances = rds.describe_db_instances(Filters=[{"Name": "db-cluster-id", "Values": [f"tgt-{uniq}"]}])
    assert sorted(i["DBInstanceIdentifier"] for i in instances["DBInstances"]) == [f"tgt-{uniq}-1", f"tgt-{uniq}-2"]
    assert all(i["DBInstanceStatus"] == "available" for i in instances["DBInstances"])

    # The operator had web-identity credentials only (IRSA): it got them from STS, no static keys.
    web_identity = aws_calls.calls(service="sts", action="AssumeRoleWithWebIdentity")
    assert web_identity and {call["parameters"]["RoleArn"] for call in web_identity} == {OPERATOR_ROLE_ARN}

    reasons = [event.reason for event in events_for(api_client, namespace, "same-region")]
    assert reasons == ["Accepted", *EXPECTED_SAME_REGION_PHASES[1:]]


def test_cross_region_restore_copies_with_kms_and_deletes_the_copy(api_client, aws, operator, namespace, uniq):
    source_kms = aws.client("kms", region_name="us-east-1")
    source_key = source_kms.create_key()["KeyMetadata"]["KeyId"]
    target_kms = aws.client("kms", region_name="us-west-2")
    target_key = target_kms.create_key()["KeyMetadata"]["KeyId"]
    target_kms.create_alias(AliasName=f"alias/stage-{uniq}", TargetKeyId=target_key)
    rds = aws.client("rds", region_name="us-east-1")
    west = aws.client("rds", region_name="us-west-2")
    make_source(rds, f"src-{uniq}", [f"snap-{uniq}"], kms_key_id=source_key)

    create_restore(
        api_client,
        namespace,
        "cross-region",
        {
            "source": {"region": "us-east-1", "snapshotIdentifier": f"snap-{uniq}"},
            "target": {"region": "us-west-2", "clusterIdentifier": f"tgt-{uniq}", "instances": {"count": 1}},
            "copy": {"kmsKeyId": f"alias/stage-{uniq}"},
        },
    )
    restore = wait_for_phase(api_client, namespace, "cross-region", {"Succeeded", "Failed"})
    status = restore["status"]
    assert status["phase"] == "Succeeded", status
    phases = [entry["phase"] for entry in status["history"]]
    assert phases[:5] == ["Pending", "ResolvingSnapshot", "Preflight", "CopyingSnapshot", "RestoringCluster"]
    copied = status["copiedSnapshot"]
    assert copied["region"] == "us-west-2" and copied["deleted"] is True

    cluster = west.describe_db_clusters(DBClusterIdentifier=f"tgt-{uniq}")["DBClusters"][0]
    assert cluster["Status"] == "available"
    assert not rds.describe_db_clusters(Filters=[{"Name": "db-cluster-id", "Values": [f"tgt-{uniq}"]}])["DBClusters"]
    remaining_copies = [
        s["DBClusterSnapshotIdentifier"]
        for s in west.describe_db_cluster_snapshots(SnapshotType="manual")["DBClusterSnapshots"]
        if s["DBClusterSnapshotIdentifier"] == copied["identifier"]
    ]
    assert remaining_copies == []
    # The source snapshot is never touched.
    source = rds.describe_db_cluster_snapshots(DBClusterSnapshotIdentifier=f"snap-{uniq}")["DBClusterSnapshots"][0]
    assert source["Status"] == "available"


def test_an_unencrypted_source_copied_cross_region_is_encrypted_at_restore(
    api_client, aws, operator, namespace, uniq, simulator
):
    """AWS refuses KmsKeyId when copying an unencrypted snapshot: the copy stays plain, copy.kmsKeyId encrypts
    the restored cluster."""
    target_kms = aws.client("kms", region_name="us-west-2")
    target_key = target_kms.create_key()["KeyMetadata"]
    target_kms.create_alias(AliasName=f"alias/plain-{uniq}", TargetKeyId=target_key["KeyId"])
    rds, west = aws.client("rds", region_name="us-east-1"), aws.client("rds", region_name="us-west-2")
    make_source(rds, f"src-{uniq}", [f"snap-{uniq}"])
    window = CallWindow(simulator)
    create_restore(api_client, namespace, "plain", {
        "source": {"region": "us-east-1", "snapshotIdentifier": f"snap-{uniq}"},
        "target": {"region": "us-west-2", "clusterIdentifier": f"tgt-{uniq}", "instances": {"count": 1}},
        "copy": {"kmsKeyId": f"alias/plain-{uniq}"},
    })
    status = wait_for_phase(api_client, namespace, "plain", {"Succeeded", "Failed"})["status"]
    assert status["phase"] == "Succeeded", status
    assert status["snapshot"]["encrypted"] is False
    cluster = west.describe_db_clusters(DBClusterIdentifier=f"tgt-{uniq}")["DBClusters"][0]
    assert cluster["StorageEncrypted"] is True
    assert target_key["KeyId"] in cluster["KmsKeyId"] or cluster["KmsKeyId"] == target_key["Arn"]
    copies = window.calls(service="rds", action="CopyDBClusterSnapshot")
    assert len(copies) == 1 and copies[0]["status"] == 200  # accepted: no KmsKeyId on an unencrypted copy


def test_latest_picks_the_newest_matching_snapshot_across_pages(
    api_client, aws, operator, namespace, uniq, simulator, aws_calls
):
    rds = aws.client("rds", region_name="us-east-1")
    names = [f"nightly-{uniq}-{day}" for day in (1, 2, 3, 4)] + [f"adhoc-{uniq}", f"nightly-{uniq}-untagged"]
    make_source(rds, f"src-{uniq}", names)
    now = datetime.now(timezone.utc)
    created = {
        f"nightly-{uniq}-1": now - timedelta(days=4),
        f"nightly-{uniq}-2": now - timedelta(days=3),
        f"nightly-{uniq}-3": now - timedelta(days=2),  # newest that matches everything
        f"nightly-{uniq}-4": now - timedelta(days=5),
        f"adhoc-{uniq}": now - timedelta(hours=1),  # newer, wrong name
        f"nightly-{uniq}-untagged": now - timedelta(hours=2),  # newer, lacks the tag
    }
    for name, when in created.items():
        simulator.set_snapshot_create_time(name, when, region="us-east-1")
        if name.startswith("nightly") and "untagged" not in name:
            arn = rds.describe_db_cluster_snapshots(DBClusterSnapshotIdentifier=name)["DBClusterSnapshots"][0][
                "DBClusterSnapshotArn"
            ]
            rds.add_tags_to_resource(ResourceName=arn, Tags=[{"Key": "schedule", "Value": "nightly"}])
    simulator.set_page_size(2)

    create_restore(
        api_client,
        namespace,
        "latest",
        {
            "source": {
                "region": "us-east-1",
                "latest": {
                    "clusterIdentifier": f"src-{uniq}",
                    "snapshotType": "manual",
                    "namePattern": "nightly-*",
                    "tags": {"schedule": "nightly"},
                    "maxAge": "7d",
                },
            },
            "target": {"clusterIdentifier": f"tgt-{uniq}", "instances": {"count": 1}},
        },
    )
    status = wait_for_phase(api_client, namespace, "latest", {"Succeeded", "Failed"})["status"]
    assert status["phase"] == "Succeeded", status
    assert status["snapshot"]["identifier"] == f"nightly-{uniq}-3"
    # Six snapshots of the source at two per page: the operator listed that cluster's snapshots page by page (the
    # test's own describes are by snapshot identifier and without the operator's user agent).
    pages = [call for call in aws_calls.calls(service="rds", action="DescribeDBClusterSnapshots")
             if "aurora-restore-operator" in call["user_agent"] and "DBClusterSnapshotIdentifier" not in call["parameters"]]
    assert len(pages) >= 3, pages


def test_existing_target_with_policy_fail_changes_nothing(api_client, aws, operator, namespace, uniq, simulator):
    rds = aws.client("rds", region_name="us-east-1")
    make_source(rds, f"src-{uniq}", [f"snap-{uniq}"])
    make_source(rds, f"tgt-{uniq}", [])
    window = CallWindow(simulator)

    create_restore(
        api_client,
        namespace,
        "exists",
        {
            "source": {"region": "us-east-1", "snapshotIdentifier": f"snap-{uniq}"},
            "target": {"clusterIdentifier": f"tgt-{uniq}"},
        },
    )
    status = wait_for_phase(api_client, namespace, "exists", {"Succeeded", "Failed"})["status"]
    assert status["phase"] == "Failed"
    assert status["failure"]["reason"] == "TargetExists"
    assert status["failure"]["phase"] == "Preflight"
    assert f"tgt-{uniq}" in status["failure"]["message"] and "Replace" in status["failure"]["message"]
    mutating = [c["action"] for c in window.calls(service="rds") if not c["action"].startswith(("Describe", "List"))]
    assert mutating == []
    assert rds.describe_db_clusters(DBClusterIdentifier=f"tgt-{uniq}")["DBClusters"][0]["Status"] == "available"
    events = events_for(api_client, namespace, "exists")
    assert events[-1].type == "Warning" and events[-1].reason == "TargetExists"


def test_spec_is_validated_by_the_apiserver(api_client, namespace):
    both_sources = {
        "source": {"region": "us-east-1", "snapshotIdentifier": "a", "latest": {"clusterIdentifier": "b"}},
        "target": {"clusterIdentifier": "c"},
    }
    with pytest.raises(ApiException) as refused:
        create_restore(api_client, namespace, "two-sources", both_sources)
    assert refused.value.status == 422 and "exactly one of snapshotIdentifier, latest, pointInTime or clone" in refused.value.body

    with pytest.raises(ApiException) as refused:
        create_restore(
            api_client,
            namespace,
            "bad-id",
            {"source": {"region": "us-east-1", "snapshotIdentifier": "a"}, "target": {"clusterIdentifier": "1--x"}},
        )
    assert refused.value.status == 422 and "clusterIdentifier" in refused.value.body

    create_restore(
        api_client,
        namespace,
        "immutable",
        {"source": {"region": "us-east-1", "snapshotIdentifier": "a"}, "target": {"clusterIdentifier": "c"}},
    )
    with pytest.raises(ApiException) as refused:
        client.CustomObjectsApi(api_client).patch_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, "immutable", {"spec": {"target": {"clusterIdentifier": "d"}}}
        )
    assert refused.value.status == 422 and "immutable" in refused.value.body
    assert get_restore(api_client, namespace, "immutable")["spec"]["timeout"] == "6h"  # defaults applied


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(
            {
                "spec": {"source": {"region": "us-east-1", "snapshotIdentifier": "no-such-snapshot-{u}"}},
                "reason": "SnapshotNotFound",
                "names": ["spec.source.snapshotIdentifier", "no-such-snapshot-{u}"],
            },
            id="unknown-snapshot",
        ),
        pytest.param(
            {
                "spec": {
                    "source": {"region": "us-east-1", "snapshotIdentifier": "snap-{u}"},
                    "target": {"region": "us-west-2"},
                    "copy": {"kmsKeyId": "alias/no-such-key-{u}"},
                },
                "reason": "KmsKeyNotUsable",
                "names": ["spec.copy.kmsKeyId", "alias/no-such-key-{u}"],
            },
            id="unknown-kms-key",
        ),
        pytest.param(
            {
                "spec": {
                    "source": {"region": "us-east-1", "snapshotIdentifier": "snap-{u}"},
                    "target": {"engineVersion": "11.9"},
                },
                "reason": "InvalidEngineVersion",
                "names": ["spec.target.engineVersion", "11.9"],
            },
            id="engine-version",
        ),
    ],
)
def test_bad_input_fails_with_a_message_naming_the_field(api_client, aws, operator, namespace, uniq, case):
    rds = aws.client("rds", region_name="us-east-1")
    make_source(rds, f"src-{uniq}", [f"snap-{uniq}"])
    spec = {
        "source": {k: v.format(u=uniq) for k, v in case["spec"]["source"].items()},
        "target": {"clusterIdentifier": f"tgt-{uniq}", **case["spec"].get("target", {})},
    }
    if "copy" in case["spec"]:
        spec["copy"] = {k: v.format(u=uniq) for k, v in case["spec"]["copy"].items()}
    create_restore(api_client, namespace, "bad", spec)
    status = wait_for_phase(api_client, namespace, "bad", {"Succeeded", "Failed"})["status"]
    assert status["phase"] == "Failed"
    assert status["failure"]["reason"] == case["reason"], status["failure"]
    for name in case["names"]:
        assert name.format(u=uniq) in status["failure"]["message"]
    assert status["conditions"][2]["type"] == "Failed" and status["conditions"][2]["status"] == "True"
    west = aws.client("rds", region_name="us-west-2")
    assert not west.describe_db_clusters(Filters=[{"Name": "db-cluster-id", "Values": [f"tgt-{uniq}"]}])["DBClusters"]


def test_throttling_and_server_errors_are_retried(api_client, aws, operator, namespace, uniq, simulator):
    rds = aws.client("rds", region_name="us-east-1")
    make_source(rds, f"src-{uniq}", [f"snap-{uniq}"])
    window = CallWindow(simulator)
    # More throttles in a row than botocore retries, so the operator's own backoff must carry the restore.
    simulator.add_fault(service="rds", action="DescribeDBClusters", error="Throttling", count=6)
    simulator.add_fault(service="rds", action="RestoreDBClusterFromSnapshot", error="InternalFailure", count=5)
    simulator.add_fault(service="rds", action="*", error="Throttling", rate=0.2)

    create_restore(
        api_client,
        namespace,
        "throttled",
        {
            "source": {"region": "us-east-1", "snapshotIdentifier": f"snap-{uniq}"},
            "target": {"clusterIdentifier": f"tgt-{uniq}", "instances": {"count": 1}},
        },
    )
    status = wait_for_phase(api_client, namespace, "throttled", {"Succeeded", "Failed"}, timeout=180)["status"]
    assert status["phase"] == "Succeeded", status
    restores = window.calls(service="rds", action="RestoreDBClusterFromSnapshot")
    assert len(restores) >= 6  # five refused with 500, then one that worked
    clusters = rds.describe_db_clusters(Filters=[{"Name": "db-cluster-id", "Values": [f"tgt-{uniq}"]}])["DBClusters"]
    assert len(clusters) == 1


@pytest.mark.parametrize("policy", ["Retain", "Delete"])
def test_deleting_the_resource_follows_the_deletion_policy(api_client, aws, operator, namespace, uniq, policy):
    rds = aws.client("rds", region_name="us-east-1")
    make_source(rds, f"src-{uniq}", [f"snap-{uniq}"])
    create_restore(
        api_client,
        namespace,
        "deleted",
        {
            "source": {"region": "us-east-1", "snapshotIdentifier": f"snap-{uniq}"},
            "target": {"clusterIdentifier": f"tgt-{uniq}", "instances": {"count": 2}},
            "deletionPolicy": policy,
        },
    )
    assert wait_for_phase(api_client, namespace, "deleted", {"Succeeded", "Failed"})["status"]["phase"] == "Succeeded"
    delete_and_wait_gone(api_client, namespace, "deleted", timeout=60)
    clusters = rds.describe_db_clusters(Filters=[{"Name": "db-cluster-id", "Values": [f"tgt-{uniq}"]}])["DBClusters"]
    instances = rds.describe_db_instances(Filters=[{"Name": "db-cluster-id", "Values": [f"tgt-{uniq}"]}])["DBInstances"]
    if policy == "Retain":
        assert [c["Status"] for c in clusters] == ["available"] and len(instances) == 2
    else:
        assert clusters == [] and instances == []
    # The source is never touched either way.
    assert rds.describe_db_clusters(DBClusterIdentifier=f"src-{uniq}")["DBClusters"][0]["Status"] == "available"


def test_metrics_count_phases_outcomes_and_retries(api_client, aws, operator, operator_env, namespace, uniq,
                                                   simulator):
    import urllib.request

    rds = aws.client("rds", region_name="us-east-1")
    make_source(rds, f"src-{uniq}", [f"snap-{uniq}"])
    simulator.add_fault(service="rds", action="DescribeDBClusters", error="Throttling", count=6)
    create_restore(api_client, namespace, "measured", {
        "source": {"region": "us-east-1", "snapshotIdentifier": f"snap-{uniq}"},
        "target": {"clusterIdentifier": f"tgt-{uniq}", "instances": {"count": 1}},
    })
    assert wait_for_phase(api_client, namespace, "measured", {"Succeeded", "Failed"})["status"]["phase"] == "Succeeded"
    port = operator_env["AURORA_RESTORE_METRICS_PORT"]
    finished = 'aurora_restore_finished_total{outcome="Succeeded",reason="Succeeded"}'

    def scrape():
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        samples = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("aurora_restore_")}
        return (text, samples) if finished in samples else None

    # The operator counts the outcome right after writing it, so the status can be seen a moment earlier.
    text, samples = wait_until(scrape, timeout=10, what="the outcome counted")
    assert samples[finished] == 1
    assert samples['aurora_restore_phase_transitions_total{phase="RestoringCluster"}'] == 1
    assert samples['aurora_restore_duration_seconds_count{outcome="Succeeded"}'] == 1
    assert samples['aurora_restore_retries_total{reason="AwsThrottling"}'] >= 1
    assert f"tgt-{uniq}" not in text and namespace not in text  # no identifiers in labels

"""A connection Secret belongs to one restore, end to end on the real apiserver: another restore naming it fails
up front and changes nothing, a re-run onto the same target (Replace) takes it over keeping what the user added
to it, a deleted holder hands it over, and a user's own Secret is never overwritten.

The restores log in to real PostgreSQL behind the simulated clusters (a connectionSecret needs masterPassword,
which ConfiguringAccess sets and Verifying checks). The Secrets class itself is also driven directly, to show
that it replaces only the version that was checked.
"""

import pytest
from databases import create_secret, make_database_source, read_secret
from kubernetes import client
from restores import create_restore, delete_and_wait_gone, get_restore, make_source, wait_for_phase

from aurora_restore.errors import RetryableError
from aurora_restore.k8s.secrets import (
    RESTORE_NAME_ANNOTATION, RESTORE_UID_LABEL, SecretHolder, SecretWriter, Secrets,
)

SOURCE_PASSWORD = "source-Pa55word-cs1"
FIRST_PASSWORD = "first-Master-Pw-cs2"
SECOND_PASSWORD = "second-Master-Pw-cs3"
SECRET = "orders-db"
USER_LABELS = {"team": "orders"}
USER_ANNOTATIONS = {"reloader.example.com/match": "true"}


def restore_spec(uniq: str, target: str, password_key: str, **changes) -> dict:
    return {
        "source": {"region": "us-east-1", "snapshotIdentifier": f"snap-{uniq}"},
        "target": {"clusterIdentifier": target, "instances": {"count": 1}},
        "masterPassword": {"secretRef": {"name": "master", "key": password_key}},
        "connectionSecret": {"name": SECRET},
        **changes,
    }


def secret_metadata(api_client, namespace: str) -> client.V1ObjectMeta:
    return client.CoreV1Api(api_client).read_namespaced_secret(SECRET, namespace).metadata


def run_to_the_end(api_client, namespace: str, name: str) -> dict:
    return wait_for_phase(api_client, namespace, name, {"Succeeded", "Failed"}, timeout=240)["status"]


def test_a_connection_secret_belongs_to_one_restore_until_it_finished_with_the_same_target(
    api_client, aws, operator, namespace, uniq, db_ca_file
):
    rds = aws.client("rds", region_name="us-east-1")
    make_database_source(rds, f"src-{uniq}", f"snap-{uniq}", "aurora-postgresql", SOURCE_PASSWORD, db_ca_file)
    create_secret(api_client, namespace, "master", {"first": FIRST_PASSWORD, "second": SECOND_PASSWORD})
    first = create_restore(api_client, namespace, "first", restore_spec(uniq, f"tgt-{uniq}", "first"))
    assert run_to_the_end(api_client, namespace, "first")["phase"] == "Succeeded"
    written = read_secret(api_client, namespace, SECRET)
    assert written["password"] == FIRST_PASSWORD
    metadata = secret_metadata(api_client, namespace)
    assert metadata.labels[RESTORE_UID_LABEL] == first["metadata"]["uid"]
    assert metadata.annotations[RESTORE_NAME_ANNOTATION] == "first"

    # Another restore, to another target, naming the same Secret: refused in Preflight, before anything is restored.
    create_restore(api_client, namespace, "other", restore_spec(uniq, f"oth-{uniq}", "second"))
    status = run_to_the_end(api_client, namespace, "other")
    assert status["phase"] == "Failed", status
    assert (status["failure"]["reason"], status["failure"]["phase"]) == ("ConnectionSecretTaken", "Preflight")
    assert (f"spec.connectionSecret: Secret {namespace}/{SECRET} belongs to AuroraRestore first, which restored "
            f"another target (Succeeded)") in status["failure"]["message"]
    assert read_secret(api_client, namespace, SECRET) == written
    assert rds.describe_db_clusters(Filters=[{"Name": "db-cluster-id", "Values": [f"oth-{uniq}"]}])["DBClusters"] == []

    # The user labels and annotates the Secret (a reloader, a team label); a re-run onto the same target (Replace)
    # takes the Secret over, and what the user added stays.
    client.CoreV1Api(api_client).patch_namespaced_secret(SECRET, namespace, {
        "metadata": {"labels": USER_LABELS, "annotations": USER_ANNOTATIONS}})
    rerun = create_restore(api_client, namespace, "rerun", restore_spec(
        uniq, f"tgt-{uniq}", "second", existingTarget={"policy": "Replace", "finalSnapshot": False}))
    status = run_to_the_end(api_client, namespace, "rerun")
    assert status["phase"] == "Succeeded", status
    assert read_secret(api_client, namespace, SECRET)["password"] == SECOND_PASSWORD
    metadata = secret_metadata(api_client, namespace)
    assert metadata.labels[RESTORE_UID_LABEL] == rerun["metadata"]["uid"]
    assert metadata.annotations[RESTORE_NAME_ANNOTATION] == "rerun"
    assert USER_LABELS.items() <= metadata.labels.items() and USER_ANNOTATIONS.items() <= metadata.annotations.items()

    # Once its holder is deleted, a restore to any target may take the Secret.
    delete_and_wait_gone(api_client, namespace, "rerun")
    after = create_restore(api_client, namespace, "after", restore_spec(uniq, f"oth-{uniq}", "first"))
    status = run_to_the_end(api_client, namespace, "after")
    assert status["phase"] == "Succeeded", status
    secret = read_secret(api_client, namespace, SECRET)
    other_cluster = rds.describe_db_clusters(DBClusterIdentifier=f"oth-{uniq}")["DBClusters"][0]
    assert int(written["port"]) != other_cluster["Port"]  # each simulated cluster has its own database server
    assert secret["password"] == FIRST_PASSWORD and int(secret["port"]) == other_cluster["Port"]
    metadata = secret_metadata(api_client, namespace)
    assert metadata.labels[RESTORE_UID_LABEL] == after["metadata"]["uid"]
    assert USER_LABELS.items() <= metadata.labels.items() and USER_ANNOTATIONS.items() <= metadata.annotations.items()


def test_a_users_own_secret_of_that_name_is_never_overwritten(api_client, aws, operator, namespace, uniq):
    rds = aws.client("rds", region_name="us-east-1")
    make_source(rds, f"src-{uniq}", [f"snap-{uniq}"])
    create_secret(api_client, namespace, "master", {"first": FIRST_PASSWORD})
    create_secret(api_client, namespace, SECRET, {"password": "the-users-own-Pw-4"})
    create_restore(api_client, namespace, "mine", restore_spec(uniq, f"tgt-{uniq}", "first"))
    status = run_to_the_end(api_client, namespace, "mine")
    assert (status["failure"]["reason"], status["failure"]["phase"]) == ("SecretNotOurs", "Preflight"), status
    assert f"Secret {namespace}/{SECRET} exists and was not written by this operator" in status["failure"]["message"]
    assert read_secret(api_client, namespace, SECRET) == {"password": "the-users-own-Pw-4"}
    assert not secret_metadata(api_client, namespace).labels
    assert "cluster" not in status  # nothing was restored
    assert get_restore(api_client, namespace, "mine")["status"]["phase"] == "Failed"


def test_the_secrets_class_replaces_a_held_secret_only_in_the_version_it_checked(api_client, namespace):
    """Two restores deciding at once: the one whose checked version is stale gets RetryableError (and decides
    again next turn) instead of overwriting what the other just wrote; a take-over drops the old ownerReference."""
    secrets = Secrets(api_client, namespace)
    # A restore that exists (no operator runs here): the garbage collector deletes a Secret whose owner does not.
    earlier = create_restore(api_client, namespace, "earlier", restore_spec("cs", "tgt-earlier", "first"))
    secrets.write(SECRET, {"password": "earlier-Pw-5"}, earlier, SecretWriter(uid=earlier["metadata"]["uid"],
                                                                               name="earlier"), None)
    checked = secrets.holder_of(SECRET)
    assert checked == SecretHolder(managed=True, restore_uid=earlier["metadata"]["uid"], restore_name="earlier",
                                   version=checked.version)
    assert [(o.kind, o.uid) for o in secret_metadata(api_client, namespace).owner_references] == [
        ("AuroraRestore", earlier["metadata"]["uid"])]

    secrets.write(SECRET, {"password": "winner-Pw-6"}, None, SecretWriter(uid="uid-winner", name="winner"), checked)
    with pytest.raises(RetryableError) as raised:
        secrets.write(SECRET, {"password": "loser-Pw-7"}, None, SecretWriter(uid="uid-loser", name="loser"), checked)
    assert raised.value.reason == "ConnectionSecretChanged" and "Pw" not in raised.value.message
    assert read_secret(api_client, namespace, SECRET) == {"password": "winner-Pw-6"}
    metadata = secret_metadata(api_client, namespace)
    assert metadata.labels[RESTORE_UID_LABEL] == "uid-winner" and not metadata.owner_references

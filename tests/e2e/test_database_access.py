"""Database access end to end, on real PostgreSQL and MariaDB servers behind the simulated clusters: the master
password from each source, users with readWrite/readOnly access, verification, connection Secrets, and no
password anywhere it must not be."""

import base64
import json
import urllib.parse
from pathlib import Path

import psycopg
import pymysql
import pytest
from databases import ROWS, connect, create_secret, execute, make_database_source, read_secret
from kubernetes import client
from restores import create_restore, get_restore, wait_for_phase, wait_until

SOURCE_PASSWORD = "source-Pa55word-1"
NEW_MASTER_PASSWORD = "restored-Master-2"
RW_PASSWORD = "app-Rw-secret-3"
RO_PASSWORD = "app-Ro-secret-4"
ENGINES = ["aurora-postgresql", "aurora-mysql"]


def restore_spec(uniq: str, **changes) -> dict:
    return {
        "source": {"region": "us-east-1", "snapshotIdentifier": f"snap-{uniq}"},
        "target": {"clusterIdentifier": f"tgt-{uniq}", "instances": {"count": 1}},
        **changes,
    }


def target_cluster(aws, uniq: str) -> dict:
    return aws.client("rds", region_name="us-east-1").describe_db_clusters(DBClusterIdentifier=f"tgt-{uniq}")[
        "DBClusters"][0]


@pytest.mark.parametrize("source", ["secretRef", "secretsManagerJson", "secretsManagerPlain", "manageInSecretsManager"])
def test_master_password_from_each_source(api_client, aws, operator, namespace, uniq, db_ca_file, source):
    rds = aws.client("rds", region_name="us-east-1")
    make_database_source(rds, f"src-{uniq}", f"snap-{uniq}", "aurora-postgresql", SOURCE_PASSWORD, db_ca_file)
    secrets_manager = aws.client("secretsmanager", region_name="us-east-1")
    if source == "secretRef":
        create_secret(api_client, namespace, "master", {"password": NEW_MASTER_PASSWORD})
        master = {"secretRef": {"name": "master", "key": "password"}}
    elif source == "secretsManagerJson":
        secrets_manager.create_secret(Name=f"aurora-restore/master-{uniq}",
                                      SecretString=json.dumps({"username": "x", "password": NEW_MASTER_PASSWORD}))
        master = {"secretsManagerSecretId": f"aurora-restore/master-{uniq}"}
    elif source == "secretsManagerPlain":
        secrets_manager.create_secret(Name=f"aurora-restore/master-{uniq}", SecretString=NEW_MASTER_PASSWORD)
        master = {"secretsManagerSecretId": f"aurora-restore/master-{uniq}"}
    else:
        master = {"manageInSecretsManager": True}

    # deletionPolicy Delete makes the connection Secret go with the AuroraRestore (ownerReference); Retain not.
    deletion_policy = "Delete" if source == "secretRef" else "Retain"
    restore = create_restore(api_client, namespace, "master", restore_spec(
        uniq, masterPassword=master, connectionSecret={"name": "orders-db"}, deletionPolicy=deletion_policy,
        verification={"queries": [{"sql": "SELECT * FROM orders", "expectRows": 3}]},
    ))
    status = wait_for_phase(api_client, namespace, "master", {"Succeeded", "Failed"}, timeout=180)["status"]
    assert status["phase"] == "Succeeded", status

    cluster = target_cluster(aws, uniq)
    if source == "manageInSecretsManager":
        arn = status["masterUserSecretArn"]
        assert arn == cluster["MasterUserSecret"]["SecretArn"]
        password = json.loads(secrets_manager.get_secret_value(SecretId=arn)["SecretString"])["password"]
        assert password != SOURCE_PASSWORD
    else:
        password = NEW_MASTER_PASSWORD
    with connect("aurora-postgresql", cluster["Endpoint"], cluster["Port"], "admin_user", password, "orders",
                 db_ca_file) as conn:
        assert sorted(execute(conn, "SELECT id, item FROM orders")) == ROWS  # the restored data
    with pytest.raises(psycopg.OperationalError):  # the source's password no longer works
        connect("aurora-postgresql", cluster["Endpoint"], cluster["Port"], "admin_user", SOURCE_PASSWORD, "orders",
                db_ca_file).close()

    secret = read_secret(api_client, namespace, "orders-db")
    assert secret["password"] == password and secret["username"] == "admin_user"
    owners = client.CoreV1Api(api_client).read_namespaced_secret("orders-db", namespace).metadata.owner_references
    if deletion_policy == "Delete":
        assert [(o.kind, o.uid) for o in owners] == [("AuroraRestore", restore["metadata"]["uid"])]
    else:
        assert not owners
    assert secret["engine"] == "aurora-postgresql" and secret["database"] == "orders"
    with psycopg.connect(secret["uri"], sslrootcert=db_ca_file, sslmode="verify-full") as conn:  # usable as it is
        assert conn.execute("SELECT count(*) FROM orders").fetchone()[0] == 3


@pytest.mark.parametrize("engine", ENGINES)
def test_users_read_write_and_read_only(api_client, aws, operator, namespace, uniq, db_ca_file, engine, request,
                                       simulator):
    rds = aws.client("rds", region_name="us-east-1")
    make_database_source(rds, f"src-{uniq}", f"snap-{uniq}", engine, SOURCE_PASSWORD, db_ca_file)
    create_secret(api_client, namespace, "passwords", {
        "master": NEW_MASTER_PASSWORD, "rw": RW_PASSWORD, "ro": RO_PASSWORD})
    create_restore(api_client, namespace, "users", restore_spec(
        uniq,
        masterPassword={"secretRef": {"name": "passwords", "key": "master"}},
        users=[
            {"name": "app_rw", "access": "readWrite", "databases": ["orders"],
             "passwordSecretRef": {"name": "passwords", "key": "rw"}, "connectionSecret": {"name": "orders-rw"}},
            {"name": "app_ro", "access": "readOnly", "databases": ["orders"],
             "passwordSecretRef": {"name": "passwords", "key": "ro"}, "connectionSecret": {"name": "orders-ro"}},
        ],
        verification={"queries": [{"sql": "SELECT * FROM orders", "expectRows": 3}]},
    ))
    status = wait_for_phase(api_client, namespace, "users", {"Succeeded", "Failed"}, timeout=180)["status"]
    assert status["phase"] == "Succeeded", status
    assert [(u["name"], u["access"]) for u in status["users"]] == [("app_rw", "readWrite"), ("app_ro", "readOnly")]
    assert status["verification"]["results"] == [{"index": 0, "rows": 3}]

    rw, ro = read_secret(api_client, namespace, "orders-rw"), read_secret(api_client, namespace, "orders-ro")
    write_errors = (psycopg.Error, pymysql.Error)
    with connect(engine, rw["endpoint"], int(rw["port"]), rw["username"], rw["password"], rw["database"],
                 db_ca_file) as conn:
        assert len(execute(conn, "SELECT * FROM orders")) == 3
        execute(conn, "INSERT INTO orders (id, item) VALUES (%s, %s)", (4, "mocha"))
    with connect(engine, ro["endpoint"], int(ro["port"]), ro["username"], ro["password"], ro["database"],
                 db_ca_file) as conn:
        assert len(execute(conn, "SELECT * FROM orders")) == 4
        with pytest.raises(write_errors):
            execute(conn, "INSERT INTO orders (id, item) VALUES (%s, %s)", (5, "latte"))

    # Tables created later by the owner are covered too (default privileges).
    cluster = target_cluster(aws, uniq)
    with connect(engine, cluster["Endpoint"], cluster["Port"], "admin_user", NEW_MASTER_PASSWORD, "orders",
                 db_ca_file) as conn:
        execute(conn, "CREATE TABLE later (id integer)")
        execute(conn, "INSERT INTO later (id) VALUES (1)")
    with connect(engine, ro["endpoint"], int(ro["port"]), ro["username"], ro["password"], ro["database"],
                 db_ca_file) as conn:
        assert execute(conn, "SELECT id FROM later") == [(1,)]

    assert_no_password_leaked(api_client, namespace, "users", request,
                              [SOURCE_PASSWORD, NEW_MASTER_PASSWORD, RW_PASSWORD, RO_PASSWORD])
    assert_no_password_in_database_log(simulator, f"tgt-{uniq}", engine,
                                       [SOURCE_PASSWORD, NEW_MASTER_PASSWORD, RW_PASSWORD, RO_PASSWORD])


def assert_no_password_in_database_log(simulator, cluster, engine, passwords):
    """The target server logged every statement (PostgreSQL log_statement=all, MariaDB's general log), the
    operator's CREATE/ALTER of the users among them, and no password in any form: the operator sends hashes."""
    server = next(d for d in simulator.databases()["databases"] if d["cluster"] == cluster)
    log = Path(server["statement_log"]).read_text(errors="replace")
    assert ("SCRAM-SHA-256$" if engine == "aurora-postgresql" else "mysql_native_password") in log
    assert "app_rw" in log and "app_ro" in log
    for password in passwords:
        for form in (password, urllib.parse.quote(password, safe=""), base64.b64encode(password.encode()).decode()):
            assert form not in log, f"a password appears in the {engine} server's statement log"


def assert_no_password_leaked(api_client, namespace, name, request, passwords):
    """No password in the operator's log, the restore's status, or any event of the namespace."""
    operator = request.getfixturevalue("operator")
    log = operator.log_path.read_text()
    status = json.dumps(get_restore(api_client, namespace, name).get("status"))
    events = json.dumps([
        (e.reason, e.message) for e in client.CoreV1Api(api_client).list_namespaced_event(namespace).items
    ])
    for password in passwords:
        for place, text in (("operator log", log), ("status", status), ("events", events)):
            assert password not in text, f"a password appears in the {place}"
    assert "->" in log  # the log is the operator's, with its transitions


def test_verification_failure_names_the_query_and_writes_no_secret(
    api_client, aws, operator, namespace, uniq, db_ca_file
):
    rds = aws.client("rds", region_name="us-east-1")
    make_database_source(rds, f"src-{uniq}", f"snap-{uniq}", "aurora-postgresql", SOURCE_PASSWORD, db_ca_file)
    create_secret(api_client, namespace, "master", {"password": NEW_MASTER_PASSWORD})
    create_restore(api_client, namespace, "verify", restore_spec(
        uniq, masterPassword={"secretRef": {"name": "master", "key": "password"}},
        connectionSecret={"name": "orders-db"},
        verification={"queries": [{"sql": "SELECT 1", "expectRows": 1},
                                  {"sql": "SELECT * FROM orders", "expectRows": 5}]},
    ))
    status = wait_for_phase(api_client, namespace, "verify", {"Succeeded", "Failed"}, timeout=180)["status"]
    assert status["failure"]["reason"] == "VerificationFailed"
    assert status["failure"]["phase"] == "Verifying"
    assert "spec.verification.queries[1]" in status["failure"]["message"]
    assert "returned 3 row(s), expected 5" in status["failure"]["message"]
    with pytest.raises(client.exceptions.ApiException):
        read_secret(api_client, namespace, "orders-db")


def test_a_missing_secret_is_waited_for_and_a_killed_operator_resumes(
    api_client, aws, operator, namespace, uniq, db_ca_file, request
):
    rds = aws.client("rds", region_name="us-east-1")
    make_database_source(rds, f"src-{uniq}", f"snap-{uniq}", "aurora-postgresql", SOURCE_PASSWORD, db_ca_file)
    # A connection Secret an earlier run of the operator wrote (its label says so): it is replaced as a whole.
    client.CoreV1Api(api_client).create_namespaced_secret(namespace, client.V1Secret(
        metadata=client.V1ObjectMeta(name="orders-db", labels={"app.kubernetes.io/managed-by": "aurora-restore-operator"}),
        string_data={"password": "stale", "leftover": "x"},
    ))
    create_restore(api_client, namespace, "late", restore_spec(
        uniq, masterPassword={"secretRef": {"name": "late-master", "key": "password"}},
        connectionSecret={"name": "orders-db"},
    ))
    waiting = wait_until(
        lambda: (lambda s: s if s.get("phase") == "ConfiguringAccess" and "waiting for Secret" in s.get("message", "")
                 else None)(get_restore(api_client, namespace, "late").get("status") or {}),
        timeout=120, what="waiting for the Secret",
    )
    assert f"{namespace}/late-master" in waiting["message"] and "spec.masterPassword.secretRef" in waiting["message"]

    operator.kill()  # killed while in ConfiguringAccess
    create_secret(api_client, namespace, "late-master", {"password": NEW_MASTER_PASSWORD})
    operator.start()

    status = wait_for_phase(api_client, namespace, "late", {"Succeeded", "Failed"}, timeout=180)["status"]
    assert status["phase"] == "Succeeded", status
    written = read_secret(api_client, namespace, "orders-db")
    assert written["password"] == NEW_MASTER_PASSWORD and "leftover" not in written
    assert_no_password_leaked(api_client, namespace, "late", request, [SOURCE_PASSWORD, NEW_MASTER_PASSWORD])


def test_a_wrong_secret_key_fails_naming_secret_and_key(api_client, aws, operator, namespace, uniq, db_ca_file):
    rds = aws.client("rds", region_name="us-east-1")
    make_database_source(rds, f"src-{uniq}", f"snap-{uniq}", "aurora-postgresql", SOURCE_PASSWORD, db_ca_file)
    create_secret(api_client, namespace, "master", {"password": NEW_MASTER_PASSWORD})
    create_restore(api_client, namespace, "wrong-key", restore_spec(
        uniq, masterPassword={"secretRef": {"name": "master", "key": "pasword"}}))
    status = wait_for_phase(api_client, namespace, "wrong-key", {"Succeeded", "Failed"}, timeout=180)["status"]
    assert status["failure"]["reason"] == "SecretKeyMissing"
    assert f"{namespace}/master" in status["failure"]["message"] and "'pasword'" in status["failure"]["message"]
    assert NEW_MASTER_PASSWORD not in json.dumps(status)


def test_a_mysql_user_name_longer_than_32_characters_fails_naming_the_field(
    api_client, aws, operator, namespace, uniq, db_ca_file
):
    """MySQL allows 32 characters (MariaDB, behind the simulator, 80): Preflight refuses the name before anything is
    copied or restored, naming the field, instead of retrying a refused CREATE USER until spec.timeout."""
    rds = aws.client("rds", region_name="us-east-1")
    make_database_source(rds, f"src-{uniq}", f"snap-{uniq}", "aurora-mysql", SOURCE_PASSWORD, db_ca_file)
    create_secret(api_client, namespace, "passwords", {"master": NEW_MASTER_PASSWORD, "rw": RW_PASSWORD})
    name = "reporting_" + "x" * 30
    create_restore(api_client, namespace, "long-user", restore_spec(
        uniq,
        masterPassword={"secretRef": {"name": "passwords", "key": "master"}},
        users=[{"name": "app_rw", "databases": ["orders"], "passwordSecretRef": {"name": "passwords", "key": "rw"}},
               {"name": name, "databases": ["orders"], "passwordSecretRef": {"name": "passwords", "key": "rw"}}],
    ))
    status = wait_for_phase(api_client, namespace, "long-user", {"Succeeded", "Failed"}, timeout=120)["status"]
    assert (status["phase"], status["failure"]["phase"], status["failure"]["reason"]) == (
        "Failed", "Preflight", "InvalidUserName")
    assert (f"spec.users[1].name: MySQL user names are at most 32 characters; {name!r} has 40"
            in status["failure"]["message"])
    with pytest.raises(rds.exceptions.DBClusterNotFoundFault):  # nothing was restored
        rds.describe_db_clusters(DBClusterIdentifier=f"tgt-{uniq}")

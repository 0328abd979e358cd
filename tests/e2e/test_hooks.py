"""Post-restore hooks end to end: SQL hooks on real PostgreSQL and MariaDB servers behind the simulated clusters,
and Job hooks on the local control plane.

The control plane's kube-controller-manager runs the job controller, which gives a Job its Pod, but no kubelet
(and no scheduler) runs that Pod: these tests assert the Job, its Secret, the Pod the job controller made and
their cleanup, and the timeout path (the Job never completes by itself). The completion path acts as the kubelet
would: it writes the Pod's status (phase Succeeded) through the pods/status subresource, and the job controller
then marks the Job Complete.
"""

import time
import uuid

import pytest
from aurora_restore.db import hook_journal
from databases import connect, create_secret, execute, make_database_source
from kubernetes import client
from restores import SESSION_POLICY, create_policy, create_restore, delete_policy, events_for, get_restore, \
    wait_for_phase, wait_until

SOURCE_PASSWORD = "source-Hook-Pa55-1"
MASTER_PASSWORD = "restored-Hook-Pa55-2"
ENGINES = ["aurora-postgresql", "aurora-mysql"]


def hooks_spec(uniq: str, hooks: list[dict]) -> dict:
    return {
        "source": {"region": "us-east-1", "snapshotIdentifier": f"snap-{uniq}"},
        "target": {"clusterIdentifier": f"tgt-{uniq}", "instances": {"count": 1}},
        "masterPassword": {"secretRef": {"name": "master", "key": "password"}},
        "hooks": {"postRestore": hooks},
    }


def seed(api_client, aws, namespace: str, uniq: str, engine: str, ca_file: str) -> None:
    make_database_source(aws.client("rds", region_name="us-east-1"), f"src-{uniq}", f"snap-{uniq}", engine,
                         SOURCE_PASSWORD, ca_file)
    create_secret(api_client, namespace, "master", {"password": MASTER_PASSWORD})


def restored(aws, uniq: str, engine: str, ca_file: str):
    cluster = aws.client("rds", region_name="us-east-1").describe_db_clusters(
        DBClusterIdentifier=f"tgt-{uniq}")["DBClusters"][0]
    return connect(engine, cluster["Endpoint"], cluster["Port"], "admin_user", MASTER_PASSWORD, "orders", ca_file)


def by_name(status: dict) -> dict[str, dict]:
    return {hook["name"]: hook for hook in status.get("hooks", [])}


@pytest.mark.parametrize("engine", ENGINES)
def test_sql_hooks_run_in_order_a_failed_continue_hook_is_rolled_back_and_reported(
        api_client, aws, operator, namespace, uniq, db_ca_file, engine):
    seed(api_client, aws, namespace, uniq, engine, db_ca_file)
    create_restore(api_client, namespace, "hooks", hooks_spec(uniq, [
        {"name": "schema", "sql": "CREATE TABLE hook_log (n integer, note varchar(40));\n"
                                  "INSERT INTO hook_log VALUES (1, 'semi;colon');\n"
                                  "UPDATE orders SET item = 'decaf' WHERE id <= 2"},
        {"name": "from-config-map", "configMapRef": {"name": "hook-sql", "key": "seed.sql"}},
        {"name": "broken", "onFailure": "Continue",
         "sql": "INSERT INTO hook_log VALUES (4, 'rolled back'); SELECT * FROM no_such_table"},
        {"name": "last", "sql": "INSERT INTO hook_log VALUES (5, 'after the failure')"},
    ]))
    # The ConfigMap does not exist yet: the hook waits for it (as for a Secret), then runs.
    wait_until(lambda: "waiting for ConfigMap" in ((get_restore(api_client, namespace, "hooks").get("status") or {})
                                                   .get("message") or ""),
               timeout=240, what="the hook waiting for its ConfigMap")
    client.CoreV1Api(api_client).create_namespaced_config_map(namespace, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="hook-sql"),
        data={"seed.sql": "-- two rows; one statement each\nINSERT INTO hook_log VALUES (2, 'b');\n"
                          "/* ; */ INSERT INTO hook_log VALUES (3, 'c');"}))
    status = wait_for_phase(api_client, namespace, "hooks", {"Succeeded", "Failed"}, timeout=240)["status"]
    assert status["phase"] == "Succeeded", status

    hooks = by_name(status)
    assert [hook["name"] for hook in status["hooks"]] == ["schema", "from-config-map", "broken", "last"]
    assert [hooks[name]["state"] for name in ("schema", "from-config-map", "broken", "last")] == [
        "Succeeded", "Succeeded", "Failed", "Succeeded"]
    commands = [(s["index"], s["command"], s.get("rows")) for s in hooks["schema"]["statements"]]
    assert commands == [(0, "CREATE TABLE", None if engine == "aurora-postgresql" else 0), (1, "INSERT", 1),
                        (2, "UPDATE", 2)]
    assert [s["command"] for s in hooks["from-config-map"]["statements"]] == ["INSERT", "INSERT"]
    assert "statement 1 (SELECT) failed" in hooks["broken"]["error"] and "no_such_table" in hooks["broken"]["error"]
    assert "rolled back" in hooks["broken"]["error"]
    warnings = [e for e in events_for(api_client, namespace, "hooks") if e.reason == "HookFailed"]
    assert len(warnings) == 1 and warnings[0].type == "Warning"
    assert "spec.hooks.postRestore[2] (broken) failed" in warnings[0].message

    with restored(aws, uniq, engine, db_ca_file) as conn:
        assert sorted(execute(conn, "SELECT n, note FROM hook_log")) == [
            (1, "semi;colon"), (2, "b"), (3, "c"), (5, "after the failure")]  # 4 was rolled back with its hook
        assert sorted(execute(conn, "SELECT id, item FROM orders")) == [(1, "decaf"), (2, "decaf"), (3, "cortado")]
        # Every hook ended and status says so: the journal (what makes a committed hook run once, tested on its
        # own below) is dropped, so it is not in the cluster handed out or in an output snapshot of it.
        tables = execute(conn, "SELECT table_name FROM information_schema.tables WHERE table_name = %s",
                         ("aurora_restore_hooks",))
        assert tables == []


def test_a_failing_hook_with_on_failure_fail_fails_the_restore_and_the_later_hooks_do_not_run(
        api_client, aws, operator, namespace, uniq, db_ca_file):
    engine = "aurora-postgresql"
    seed(api_client, aws, namespace, uniq, engine, db_ca_file)
    create_restore(api_client, namespace, "failing", hooks_spec(uniq, [
        {"name": "slow", "timeout": "1s", "onFailure": "Continue", "sql": "SELECT pg_sleep(5)"},
        {"name": "drops-journal", "onFailure": "Continue", "sql": "DROP TABLE aurora_restore_hooks"},
        {"name": "first", "sql": "CREATE TABLE hook_log (n integer); INSERT INTO hook_log VALUES (1)"},
        {"name": "divide", "sql": "INSERT INTO hook_log VALUES (2); SELECT 1 / 0"},
        {"name": "never", "sql": "INSERT INTO hook_log VALUES (3)"},
    ]))
    status = wait_for_phase(api_client, namespace, "failing", {"Succeeded", "Failed"}, timeout=240)["status"]
    assert status["phase"] == "Failed", status
    assert (status["failure"]["reason"], status["failure"]["phase"]) == ("HookFailed", "RunningHooks")
    assert "spec.hooks.postRestore[3] (divide) failed" in status["failure"]["message"]
    assert "division by zero" in status["failure"]["message"]
    hooks = by_name(status)
    assert hooks["slow"]["state"] == "TimedOut" and "longer than 1s" in hooks["slow"]["error"]
    assert hooks["drops-journal"]["state"] == "Failed"  # reported, not retried until spec.timeout
    assert "journal row could not be written" in hooks["drops-journal"]["error"]
    assert (hooks["first"]["state"], hooks["divide"]["state"]) == ("Succeeded", "Failed")
    assert "never" not in hooks

    with restored(aws, uniq, engine, db_ca_file) as conn:  # a direct restore's cluster is kept for inspection
        assert execute(conn, "SELECT n FROM hook_log") == [(1,)]
        assert execute(conn, "SELECT hook FROM aurora_restore_hooks") == [("first",)]  # the DROP was rolled back


@pytest.mark.parametrize("engine", ENGINES)
def test_the_journal_is_found_after_a_hook_moves_the_search_path_and_a_hook_dropping_it_cannot_commit(
        aws, uniq, db_ca_file, engine):
    """The journal runner on a real server (no restore needed): its table is named with the schema or database of
    the hook's start, so `SET search_path` or `USE` in a hook neither loses the row nor makes it unwritable."""
    make_database_source(aws.client("rds", region_name="us-east-1"), f"src-{uniq}", f"snap-{uniq}", engine,
                         SOURCE_PASSWORD, db_ca_file)
    cluster = aws.client("rds", region_name="us-east-1").describe_db_clusters(
        DBClusterIdentifier=f"src-{uniq}")["DBClusters"][0]

    def connection():
        return connect(engine, cluster["Endpoint"], cluster["Port"], "admin_user", SOURCE_PASSWORD, "orders",
                       db_ca_file)

    run = hook_journal.RUNNERS[engine][0]
    uid = str(uuid.uuid4())
    move = ["CREATE SCHEMA moved", "SET search_path TO moved"] if engine == "aurora-postgresql" else \
        ["CREATE DATABASE moved", "USE moved"]
    statements = move + ["CREATE TABLE elsewhere (n integer)"]
    with connection() as conn:
        results, ran = run(conn, uid, "move", statements, ["CREATE SCHEMA", "SET", "CREATE TABLE"], 10)
    assert ran and len(results) == 3
    with connection() as conn:
        _, ran = run(conn, uid, "move", statements, ["CREATE SCHEMA", "SET", "CREATE TABLE"], 10)
        assert not ran  # found in the schema (database) it was written to
        assert execute(conn, "SELECT hook FROM aurora_restore_hooks") == [("move",)]

        with pytest.raises(hook_journal.JournalFailed):
            run(conn, uid, "drop", ["DELETE FROM orders", "DROP TABLE aurora_restore_hooks"],
                ["DELETE", "DROP TABLE"], 10)
        if engine == "aurora-postgresql":  # MySQL commits DROP TABLE by itself; PostgreSQL rolls all of it back
            assert execute(conn, "SELECT hook FROM aurora_restore_hooks") == [("move",)]
            assert execute(conn, "SELECT count(*) FROM orders") == [(3,)]


def test_the_journal_is_found_after_a_hook_moves_the_search_path_of_new_sessions(aws, uniq, db_ca_file):
    """PostgreSQL: a hook that changes the database's default search_path (ALTER DATABASE ... SET) leaves the next
    session, after a crash, in another schema; its row is still found, so it does not run twice; and the
    journal's drop finds the table there too."""
    make_database_source(aws.client("rds", region_name="us-east-1"), f"src-{uniq}", f"snap-{uniq}",
                         "aurora-postgresql", SOURCE_PASSWORD, db_ca_file)
    cluster = aws.client("rds", region_name="us-east-1").describe_db_clusters(
        DBClusterIdentifier=f"src-{uniq}")["DBClusters"][0]

    def connection():
        return connect("aurora-postgresql", cluster["Endpoint"], cluster["Port"], "admin_user", SOURCE_PASSWORD,
                       "orders", db_ca_file)

    run = hook_journal.RUNNERS["aurora-postgresql"][0]
    uid = str(uuid.uuid4())
    statements = ["CREATE SCHEMA later", "ALTER DATABASE orders SET search_path TO later",
                  "CREATE TABLE public.ran_once (n integer)"]  # a second run would fail: it exists
    commands = ["CREATE SCHEMA", "ALTER DATABASE", "CREATE TABLE"]
    with connection() as conn:
        assert run(conn, uid, "defaults", statements, commands, 10)[1]
    with connection() as conn:
        assert execute(conn, "SELECT current_schema()") == [("later",)]
        assert not run(conn, uid, "defaults", statements, commands, 10)[1]  # found in public: not run again
        hook_journal.drop_journal(conn, "aurora-postgresql")
        assert execute(conn, "SELECT count(*) FROM pg_catalog.pg_class WHERE relname = 'aurora_restore_hooks'") == [
            (0,)]


@pytest.mark.parametrize("engine", ENGINES)
def test_a_hooks_timeout_bounds_all_its_statements_together_not_each(aws, uniq, db_ca_file, engine):
    """Two statements each shorter than the timeout but longer together: the second one is cancelled."""
    make_database_source(aws.client("rds", region_name="us-east-1"), f"src-{uniq}", f"snap-{uniq}", engine,
                         SOURCE_PASSWORD, db_ca_file)
    cluster = aws.client("rds", region_name="us-east-1").describe_db_clusters(
        DBClusterIdentifier=f"src-{uniq}")["DBClusters"][0]
    run, timed_out, _ = hook_journal.RUNNERS[engine]
    sleep = "SELECT pg_sleep(1.5)" if engine == "aurora-postgresql" else "SELECT SLEEP(1.5)"
    with connect(engine, cluster["Endpoint"], cluster["Port"], "admin_user", SOURCE_PASSWORD, "orders",
                 db_ca_file) as conn:
        with pytest.raises(hook_journal.StatementFailed) as failed:
            run(conn, str(uuid.uuid4()), "slow", [sleep, sleep], ["SELECT", "SELECT"], 2)
    assert failed.value.index == 1 and timed_out(failed.value.error), failed.value.error


# --- Job hooks ----------------------------------------------------------------------------------------------------

@pytest.fixture
def job_hooks_policy(api_client, namespace):
    """The session's policy for this test's namespace, with allowJobHooks."""
    name = f"p-{uuid.uuid4().hex[:8]}"
    create_policy(api_client, name, {**SESSION_POLICY, "namespaces": [namespace], "allowJobHooks": True})
    yield name
    delete_policy(api_client, name)


def job_hook(name: str, timeout: str, on_failure: str = "Fail") -> dict:
    return {"name": name, "timeout": timeout, "onFailure": on_failure, "job": {"backoffLimit": 0, "template": {
        "metadata": {"labels": {"app": "hook"}},
        "spec": {"containers": [{"name": "seed", "image": "registry.example/seeder:1",
                                 "command": ["sh", "-c", "psql -c 'SELECT 1'"]}]},
    }}}


def hook_objects(api_client, namespace: str, uid: str):
    """The Jobs and Secrets carrying the restore's UID and a hook label."""
    selector = f"dbrestore.io/restore-uid={uid},dbrestore.io/hook"
    jobs = client.BatchV1Api(api_client).list_namespaced_job(namespace, label_selector=selector).items
    secrets = client.CoreV1Api(api_client).list_namespaced_secret(namespace, label_selector=selector).items
    return jobs, secrets


@pytest.mark.own_policies
def test_a_job_hook_gets_its_secret_and_pod_and_succeeds_when_its_pod_does(
        api_client, aws, operator, namespace, uniq, db_ca_file, job_hooks_policy):
    seed(api_client, aws, namespace, uniq, "aurora-postgresql", db_ca_file)
    restore = create_restore(api_client, namespace, "job", hooks_spec(uniq, [job_hook("seed", "10m")]))
    uid = restore["metadata"]["uid"]
    batch, core = client.BatchV1Api(api_client), client.CoreV1Api(api_client)

    [job] = wait_until(lambda: hook_objects(api_client, namespace, uid)[0], timeout=240, what="the hook's Job")
    [secret] = hook_objects(api_client, namespace, uid)[1]
    assert job.metadata.name.startswith("job-hook-seed-") and secret.metadata.name == job.metadata.name + "-db"
    for obj in (job, secret):
        [owner] = obj.metadata.owner_references
        assert (owner.kind, owner.name, owner.uid, owner.controller) == ("AuroraRestore", "job", uid, True)
        assert obj.metadata.labels["app.kubernetes.io/managed-by"] == "aurora-restore-operator"
    assert sorted(secret.data) == ["DB_ENGINE", "DB_HOST", "DB_NAME", "DB_PASSWORD", "DB_PORT", "DB_USER"]
    assert job.spec.active_deadline_seconds == 600 and job.spec.backoff_limit == 0
    [container] = job.spec.template.spec.containers
    assert [e.secret_ref.name for e in container.env_from] == [secret.metadata.name]
    assert job.spec.template.metadata.labels["app"] == "hook"

    # The job controller makes the Pod; nothing runs it.
    def the_pod():
        return core.list_namespaced_pod(namespace, label_selector=f"job-name={job.metadata.name}").items

    [pod] = wait_until(the_pod, timeout=60, what="the Job's Pod")
    assert pod.status.phase == "Pending" and not pod.spec.node_name
    assert pod.spec.containers[0].env_from[0].secret_ref.name == secret.metadata.name
    assert pod.metadata.labels["dbrestore.io/restore-uid"] == uid
    status = wait_for_phase(api_client, namespace, "job", {"RunningHooks"})["status"]
    assert by_name(status)["seed"]["state"] == "Running"
    operator.kill()  # the restarted operator follows the same Job (checked below by its uid): none is made twice
    operator.start()

    # Acting as the kubelet: the Pod ran and succeeded.
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    core.patch_namespaced_pod_status(pod.metadata.name, namespace, {"status": {
        "phase": "Succeeded",
        "containerStatuses": [{"name": "seed", "image": container.image, "imageID": "", "ready": False,
                               "restartCount": 0, "state": {"terminated": {
                                   "exitCode": 0, "reason": "Completed", "startedAt": now, "finishedAt": now}}}],
    }})
    status = wait_for_phase(api_client, namespace, "job", {"Succeeded", "Failed"}, timeout=240)["status"]
    assert status["phase"] == "Succeeded", status
    hook = by_name(status)["seed"]
    assert (hook["kind"], hook["state"], hook["jobName"], hook["secretName"], hook["secretDeleted"]) == (
        "job", "Succeeded", job.metadata.name, secret.metadata.name, True)
    jobs, secrets = hook_objects(api_client, namespace, uid)
    assert [j.metadata.uid for j in jobs] == [job.metadata.uid] and secrets == []  # the Job stays, for its logs
    assert batch.read_namespaced_job(job.metadata.name, namespace).status.succeeded == 1


@pytest.mark.own_policies
def test_a_job_hook_that_never_completes_times_out_and_its_job_and_secret_are_deleted(
        api_client, aws, operator, namespace, uniq, db_ca_file, job_hooks_policy):
    seed(api_client, aws, namespace, uniq, "aurora-postgresql", db_ca_file)
    restore = create_restore(api_client, namespace, "stuck", hooks_spec(uniq, [
        job_hook("wait", "5s", on_failure="Continue"),
        {"name": "after", "sql": "CREATE TABLE after_the_job (n integer)"},
    ]))
    uid = restore["metadata"]["uid"]
    [job] = wait_until(lambda: hook_objects(api_client, namespace, uid)[0], timeout=240, what="the hook's Job")
    status = wait_for_phase(api_client, namespace, "stuck", {"Succeeded", "Failed"}, timeout=240)["status"]
    assert status["phase"] == "Succeeded", status
    hooks = by_name(status)
    assert (hooks["wait"]["state"], hooks["wait"]["secretDeleted"]) == ("TimedOut", True)
    assert "did not finish within 5s" in hooks["wait"]["error"]
    assert hooks["after"]["state"] == "Succeeded"
    assert hook_objects(api_client, namespace, uid) == ([], [])  # the Job (and so its Pod) and the Secret
    wait_until(lambda: not client.CoreV1Api(api_client).list_namespaced_pod(
        namespace, label_selector=f"job-name={job.metadata.name}").items, timeout=60, what="the Pod deleted")
    warnings = [e for e in events_for(api_client, namespace, "stuck") if e.reason == "HookFailed"]
    assert len(warnings) == 1 and "spec.hooks.postRestore[0] (wait) timed out" in warnings[0].message


def test_a_job_hook_is_refused_in_pending_without_allow_job_hooks(api_client, operator, namespace, uniq):
    restore = create_restore(api_client, namespace, "refused", hooks_spec(uniq, [job_hook("seed", "1m")]))
    status = wait_for_phase(api_client, namespace, "refused", {"Succeeded", "Failed"})["status"]
    assert status["phase"] == "Failed", status
    assert (status["failure"]["reason"], status["failure"]["phase"]) == ("NotAllowedByPolicy", "Pending")
    assert "spec.hooks.postRestore[0].job (seed)" in status["failure"]["message"]
    assert "allowJobHooks is false" in status["failure"]["message"]
    assert hook_objects(api_client, namespace, restore["metadata"]["uid"]) == ([], [])

"""RunningHooks' Job hooks, their policy check and their names, against an in-memory stand-in for the Kubernetes
API (k8s/jobs.py HookJobs's surface). SQL hooks need a database: tests/e2e/test_hooks.py runs them on real
PostgreSQL and MariaDB servers."""

import copy
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pymysql
import pytest

from aurora_restore.api.models import AuroraRestoreSpec
from aurora_restore.api.phase import Phase
from aurora_restore.db.connection import Credentials
from aurora_restore.errors import TerminalError
from aurora_restore.k8s.jobs import HOOK_LABEL, NotOurs, is_ours
from aurora_restore.k8s.secrets import RESTORE_UID_LABEL
from aurora_restore.machine import apply_outcome
from aurora_restore.steps.hooks import first_line, job_body, job_name, job_state, remove_hook_objects, run_hooks, \
    secret_name
from aurora_restore.steps.outcomes import Advance, Fail, Wait
from aurora_restore.steps.context import RESTORE_UID_TAG

from .conftest import PERMISSIVE_POLICY, TARGET, RestoreRun

PASSWORD = "Hook-master-Pa55"
TEMPLATE = {"metadata": {"labels": {"app": "seed"}},
            "spec": {"initContainers": [{"name": "wait", "image": "busybox"}],
                     "containers": [{"name": "seed", "image": "seeder:1",
                                     "envFrom": [{"configMapRef": {"name": "x"}}]}]}}


def job_hook(name: str = "seed", on_failure: str = "Fail", timeout: str = "2m") -> dict:
    return {"name": name, "job": {"template": TEMPLATE, "backoffLimit": 2}, "timeout": timeout,
            "onFailure": on_failure}


class FakeHookJobs:
    """Jobs and Secrets of one namespace as the apiserver keeps them: names are unique, deletes by name."""

    def __init__(self):
        self.jobs: dict[str, dict[str, Any]] = {}
        self.secrets: dict[str, dict[str, Any]] = {}
        self.created = 0

    def create_secret(self, body, uid):
        name = body["metadata"]["name"]
        if name in self.secrets and not is_ours(self.secrets[name], uid):
            raise NotOurs("HookResourceNotOurs", f"Secret {name} is not ours")
        self.secrets.setdefault(name, copy.deepcopy(body))

    def create_job(self, body, uid):
        name = body["metadata"]["name"]
        if name in self.jobs:
            if not is_ours(self.jobs[name], uid):
                raise NotOurs("HookResourceNotOurs", f"Job {name} is not ours")
            return self.jobs[name]
        self.created += 1
        job = copy.deepcopy(body)
        job["metadata"].update(uid=f"job-{self.created}", creationTimestamp=self.created_at.isoformat())
        self.jobs[name] = job
        return job

    def read_job(self, name):
        return self.jobs.get(name)

    def delete_job(self, name, uid):
        if name in self.jobs and is_ours(self.jobs[name], uid):
            del self.jobs[name]

    def delete_secret(self, name, uid):
        if name in self.secrets and is_ours(self.secrets[name], uid):
            del self.secrets[name]

    def finish(self, name: str, condition: str, reason: str = "") -> None:
        self.jobs[name]["status"] = {"conditions": [{"type": condition, "status": "True", "reason": reason}]}


@pytest.fixture
def hooks_run(restore):
    """A restore in RunningHooks whose cluster is available, with `hooks` and a master password Secret."""

    def build(hooks: list[dict], allow_job_hooks: bool = True) -> tuple[RestoreRun, FakeHookJobs, list]:
        run = restore({"masterPassword": {"secretRef": {"name": "master", "key": "password"}},
                       "hooks": {"postRestore": hooks}},
                      policies={"jobs": {**PERMISSIVE_POLICY, "allowJobHooks": allow_job_hooks}})
        run.target.add_cluster(TARGET, instances=1, tags={RESTORE_UID_TAG: run.uid})
        run.secrets.add("master", {"password": PASSWORD})
        run.status = run.status.model_copy(update={"phase": Phase.RUNNING_HOOKS})
        return run, FakeHookJobs(), []

    return build


def turn(run: RestoreRun, jobs: FakeHookJobs, events: list):
    jobs.created_at = run.now  # the apiserver's clock: a Job made in this turn is created now
    ctx = replace(run.context(), hook_jobs=jobs, record_event=lambda *event: events.append(event))
    try:
        outcome = run_hooks(ctx)
    except TerminalError as error:
        outcome = Fail(error.reason, error.message)
    run.status = apply_outcome(run.status, outcome, run.now, 1, 20)
    run.now += timedelta(seconds=30)
    return outcome


def test_a_job_hook_makes_its_secret_and_job_then_reports_completion_and_deletes_the_secret(hooks_run):
    run, jobs, events = hooks_run([job_hook()])
    name, secret = job_name("nightly", "seed", run.uid), secret_name("nightly", "seed", run.uid)

    assert isinstance(turn(run, jobs, events), Wait)
    assert set(jobs.jobs) == {name} and set(jobs.secrets) == {secret}
    data = jobs.secrets[secret]["stringData"]
    assert data["DB_PASSWORD"] == PASSWORD and data["DB_USER"] and data["DB_ENGINE"] == "aurora-postgresql"
    assert set(data) == {"DB_HOST", "DB_PORT", "DB_NAME", "DB_USER", "DB_PASSWORD", "DB_ENGINE"}
    [entry] = run.status.hooks
    assert (entry.state, entry.job_name, entry.secret_name) == ("Running", name, secret)
    assert PASSWORD not in run.status.model_dump_json()

    assert isinstance(turn(run, jobs, events), Wait)  # still running: nothing new is made
    assert jobs.created == 1

    jobs.finish(name, "Complete")
    turn(run, jobs, events)
    [entry] = run.status.hooks
    assert (entry.state, entry.secret_deleted) == ("Succeeded", True)
    assert not jobs.secrets and name in jobs.jobs  # the finished Job stays (its Pod's logs); owned by the restore
    assert isinstance(turn(run, jobs, events), Advance) and run.status.phase == Phase.VERIFYING


def test_a_job_found_after_a_crash_is_taken_over_not_made_twice(hooks_run):
    run, jobs, events = hooks_run([job_hook()])
    saved = run.status
    turn(run, jobs, events)
    run.status = saved  # the status write was lost
    turn(run, jobs, events)
    assert jobs.created == 1 and run.status.hooks[0].state == "Running"


def test_a_job_timed_out_while_two_status_writes_were_lost_is_never_made_again(hooks_run):
    """Killed after creating the Job (no entry written), down past the hook's timeout, and the turn that deletes
    the timed-out Job loses its status write too: the entry was recorded before the deletion, so the next turn
    reads "made and gone", never "never made"."""
    run, jobs, events = hooks_run([job_hook(timeout="1m")])
    saved = run.status
    turn(run, jobs, events)
    run.status = saved  # the first status write was lost: no entry, the Job exists
    run.now += timedelta(minutes=5)
    turn(run, jobs, events)  # takes the Job over: its entry is written first
    assert run.status.hooks[0].state == "Running" and jobs.created == 1
    recorded = run.status
    turn(run, jobs, events)  # timed out: the Job is deleted ...
    assert job_name("nightly", "seed", run.uid) not in jobs.jobs
    run.status = recorded  # ... and that status write is lost as well
    turn(run, jobs, events)
    assert jobs.created == 1 and run.status.hooks[0].state in ("TimedOut", "Failed")


def test_a_job_past_its_timeout_is_deleted_and_reported_timed_out(hooks_run):
    run, jobs, events = hooks_run([job_hook(on_failure="Continue", timeout="1m"), job_hook("next")])
    turn(run, jobs, events)
    run.now += timedelta(minutes=1)
    outcome = turn(run, jobs, events)
    first = run.status.hooks[0]
    assert (first.state, first.secret_deleted) == ("TimedOut", True) and "within 1m" in first.error
    assert job_name("nightly", "seed", run.uid) not in jobs.jobs and not jobs.secrets
    assert isinstance(outcome, Wait) and outcome.delay == 0
    assert [(kind, reason) for kind, reason, _ in events] == [("Warning", "HookFailed")]
    assert "spec.hooks.postRestore[0] (seed) timed out" in events[0][2]
    turn(run, jobs, events)  # the next hook starts
    assert job_name("nightly", "next", run.uid) in jobs.jobs


def test_a_failed_job_with_on_failure_fail_fails_the_restore_naming_the_hook_and_the_next_does_not_run(hooks_run):
    run, jobs, events = hooks_run([job_hook(), job_hook("next")])
    turn(run, jobs, events)
    jobs.finish(job_name("nightly", "seed", run.uid), "Failed", "BackoffLimitExceeded")
    outcome = turn(run, jobs, events)
    assert isinstance(outcome, Fail) and outcome.reason == "HookFailed"
    assert "spec.hooks.postRestore[0] (seed) failed" in outcome.message
    assert run.status.phase == Phase.CLEANING_UP_AFTER_FAILURE and not jobs.secrets
    assert [hook.name for hook in run.status.hooks] == ["seed"]


def test_deadline_exceeded_reads_as_timed_out():
    hook = AuroraRestoreSpec.model_validate({
        "source": {"region": "us-east-1", "snapshotIdentifier": "s"}, "target": {"clusterIdentifier": "t"},
        "masterPassword": {"manageInSecretsManager": True}, "hooks": {"postRestore": [job_hook()]},
    }).post_restore_hooks[0]
    job = {"metadata": {}, "status": {"conditions": [{"type": "Failed", "status": "True",
                                                       "reason": "DeadlineExceeded"}]}}
    assert job_state(job, hook, None)[0] == "TimedOut"


def test_the_job_carries_the_secret_on_every_container_and_the_restores_marks(hooks_run):
    run, jobs, events = hooks_run([job_hook()])
    ctx = run.context()
    hook = ctx.spec.post_restore_hooks[0]
    body = job_body(ctx, hook, "job", "job-db")
    pod = body["spec"]["template"]
    assert body["spec"]["backoffLimit"] == 2 and body["spec"]["activeDeadlineSeconds"] == 120
    assert pod["spec"]["restartPolicy"] == "Never"
    for container in pod["spec"]["containers"] + pod["spec"]["initContainers"]:
        assert {"secretRef": {"name": "job-db"}} in container["envFrom"]
    assert {"configMapRef": {"name": "x"}} in pod["spec"]["containers"][0]["envFrom"]  # the user's stay
    for labels in (body["metadata"]["labels"], pod["metadata"]["labels"]):
        assert labels[RESTORE_UID_LABEL] == run.uid and labels[HOOK_LABEL] == "seed"
    assert pod["metadata"]["labels"]["app"] == "seed"
    [owner] = body["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["uid"], owner["controller"]) == ("AuroraRestore", run.uid, True)
    assert TEMPLATE["spec"]["containers"][0]["envFrom"] == [{"configMapRef": {"name": "x"}}]  # spec untouched


def test_names_are_deterministic_short_enough_and_per_restore():
    long = job_name("r" * 200, "h" * 40, "7d3f9a2e-4c1b")
    assert len(long) <= 63 and long.endswith("-7d3f9a2e") and long == job_name("r" * 200, "h" * 40, "7d3f9a2e-4c1b")
    assert job_name("a", "seed", "11111111-x") != job_name("a", "seed", "22222222-x")


def test_hooks_whose_names_a_long_restore_name_would_cut_alike_get_jobs_of_their_own():
    restore, uid = "nightly-refresh-of-the-orders-database-staging-run", "7d3f9a2e-4c1b"
    first, second = job_name(restore, "reindex-orders", uid), job_name(restore, "reindex-customers", uid)
    assert first != second and len(first) <= 63 and len(second) <= 63
    assert first == job_name(restore, "reindex-orders", uid) and first.endswith("-7d3f9a2e")
    assert secret_name(restore, "reindex-orders", uid) != secret_name(restore, "reindex-customers", uid)
    assert job_name("a.b-", "seed", "1") == "a.b--hook-seed-1"


def test_a_job_hook_without_allow_job_hooks_is_refused_in_pending_naming_the_field(restore):
    run = restore({"masterPassword": {"secretRef": {"name": "m", "key": "p"}},
                   "hooks": {"postRestore": [{"name": "sql", "sql": "SELECT 1"}, job_hook()]}},
                  policies={"strict": PERMISSIVE_POLICY})
    outcome = run.step()
    assert isinstance(outcome, Fail) and outcome.reason == "NotAllowedByPolicy"
    assert "spec.hooks.postRestore[1].job (seed)" in outcome.message and "allowJobHooks is false" in outcome.message
    assert not run.cloud.calls


def test_sql_hooks_need_no_allow_job_hooks(restore):
    run = restore({"masterPassword": {"secretRef": {"name": "m", "key": "p"}},
                   "hooks": {"postRestore": [{"name": "sql", "sql": "SELECT 1"}]}},
                  policies={"strict": PERMISSIVE_POLICY})
    assert not isinstance(run.step(), Fail)


def test_a_policy_withdrawn_before_the_job_is_made_stops_it(hooks_run):
    run, jobs, events = hooks_run([job_hook()], allow_job_hooks=False)
    outcome = turn(run, jobs, events)
    assert isinstance(outcome, Fail) and outcome.reason == "NotAllowedByPolicy" and not jobs.jobs


def test_cleanup_deletes_the_secrets_and_running_jobs_by_their_names_not_by_status(hooks_run):
    run, jobs, events = hooks_run([job_hook(), job_hook("done"), job_hook("taken")])
    saved = run.status
    turn(run, jobs, events)
    run.status = saved  # the status write was lost: cleanup must not need it
    seed, done, taken = (job_name("nightly", hook, run.uid) for hook in ("seed", "done", "taken"))
    jobs.jobs[done] = {"metadata": {"name": done, "labels": jobs.jobs[seed]["metadata"]["labels"]},
                       "status": {"conditions": [{"type": "Complete", "status": "True"}]}}
    jobs.secrets[secret_name("nightly", "done", run.uid)] = copy.deepcopy(jobs.secrets[secret_name(
        "nightly", "seed", run.uid)])
    someone_elses = {"metadata": {"labels": {RESTORE_UID_LABEL: "other", HOOK_LABEL: "x"}}}
    jobs.jobs[taken], jobs.secrets[secret_name("nightly", "taken", run.uid)] = someone_elses, someone_elses
    remove_hook_objects(replace(run.context(), hook_jobs=jobs))
    assert set(jobs.jobs) == {done, taken}  # a finished Job stays (its logs); another's is never touched
    assert set(jobs.secrets) == {secret_name("nightly", "taken", run.uid)}


def test_a_job_deleted_for_its_timeout_by_a_turn_whose_status_was_lost_still_reads_timed_out(hooks_run):
    run, jobs, events = hooks_run([job_hook(timeout="1m", on_failure="Continue")])
    turn(run, jobs, events)
    run.now += timedelta(minutes=1)
    saved = run.status
    turn(run, jobs, events)  # deletes the Secret and the Job...
    run.status = saved  # ...and its status write is lost
    turn(run, jobs, events)
    assert run.status.hooks[0].state == "TimedOut" and run.status.hooks[0].secret_deleted


def test_a_failure_message_quotes_no_statement_text_nor_the_password():
    mysql = pymysql.err.ProgrammingError(1064, "You have an error in your SQL syntax; check the manual that "
                                         "corresponds to your MariaDB server version for the right syntax to use "
                                         "near 'IDENTIFIED BY 'app-Secret-1'' at line 1")
    message = first_line(mysql, Credentials("admin_user", PASSWORD))
    assert "app-Secret-1" not in message and "IDENTIFIED" not in message and "syntax to use at line 1" in message
    postgres = RuntimeError(f"password {PASSWORD} refused\nLINE 1: ALTER ROLE app PASSWORD 'app-Secret-1'")
    assert first_line(postgres, Credentials("admin_user", PASSWORD)) == "password ******** refused"

"""AuroraRestoreSchedules end to end: runs on the minute, concurrency policies, suspend, windows, history limits,
invalid specs, the garbage collector's cascade, one catch-up after downtime, and the tenant policy per run.

Each minute boundary a test waits for costs real time, so one test watches several schedules side by side over
the same two boundaries."""

import time
from datetime import datetime, timedelta, timezone

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from restores import create_policy, delete_policy, events_for, make_source, wait_for_phase, wait_until

from aurora_restore.api import GROUP, PLURAL, VERSION
from aurora_restore.api.schedule import SCHEDULE_KIND, SCHEDULE_LABEL, SCHEDULE_PLURAL, SCHEDULED_TIME_ANNOTATION


@pytest.fixture
def operator_env(operator_env):
    """Schedules look at their spec and runs every second (the default is 30 s); due times wake them anyway."""
    return {**operator_env, "AURORA_RESTORE_SCHEDULE_POLL_SECONDS": "1"}


@pytest.fixture
def schedules(api_client, namespace):
    """Creates schedules; at the end deletes them, leaving their runs to the namespace fixture's cleanup (Orphan:
    the garbage collector deleting them meanwhile would race it)."""
    objects = client.CustomObjectsApi(api_client)

    def create(name: str, spec: dict) -> dict:
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": SCHEDULE_KIND, "metadata": {"name": name}, "spec": spec}
        return objects.create_namespaced_custom_object(GROUP, VERSION, namespace, SCHEDULE_PLURAL, body)

    yield create
    for item in objects.list_namespaced_custom_object(GROUP, VERSION, namespace, SCHEDULE_PLURAL)["items"]:
        name = item["metadata"]["name"]
        objects.patch_namespaced_custom_object(GROUP, VERSION, namespace, SCHEDULE_PLURAL, name,
                                               {"metadata": {"finalizers": None}})
        try:
            objects.delete_namespaced_custom_object(GROUP, VERSION, namespace, SCHEDULE_PLURAL, name,
                                                    body=client.V1DeleteOptions(propagation_policy="Orphan"))
        except ApiException as error:
            if error.status != 404:
                raise


def get_schedule(api_client, namespace: str, name: str) -> dict:
    return client.CustomObjectsApi(api_client).get_namespaced_custom_object(
        GROUP, VERSION, namespace, SCHEDULE_PLURAL, name)


def patch_schedule(api_client, namespace: str, name: str, spec: dict) -> None:
    client.CustomObjectsApi(api_client).patch_namespaced_custom_object(
        GROUP, VERSION, namespace, SCHEDULE_PLURAL, name, {"spec": spec})


def runs_of(api_client, namespace: str, schedule: str) -> dict[str, dict]:
    items = client.CustomObjectsApi(api_client).list_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, label_selector=f"{SCHEDULE_LABEL}={schedule}")["items"]
    return {item["metadata"]["name"]: item for item in items}


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def first_due(schedule: dict) -> datetime:
    """The first minute boundary after the schedule's creation (creationTimestamp has whole seconds)."""
    created = parse(schedule["metadata"]["creationTimestamp"])
    return created.replace(second=0) + timedelta(minutes=1)


def run_name(schedule: str, due: datetime) -> str:
    return f"{schedule}-{int(due.timestamp()) // 60}"


def sleep_until(moment: datetime) -> None:
    time.sleep(max(0.0, (moment - datetime.now(timezone.utc)).total_seconds()))


def minute_of(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


def next_boundary_with_room(room_seconds: float = 20) -> datetime:
    """The next minute boundary, at least `room_seconds` away (sleeps past a nearer one): schedules created now
    are all created before it, however slow the machine."""
    now = datetime.now(timezone.utc)
    boundary = minute_of(now) + timedelta(minutes=1)
    if (boundary - now).total_seconds() < room_seconds:
        sleep_until(boundary + timedelta(seconds=1))
        boundary += timedelta(minutes=1)
    return boundary


def scheduled_of(run: dict) -> datetime:
    """A run's scheduled time, from its name (<schedule>-<minutes since the epoch>)."""
    return datetime.fromtimestamp(int(run["metadata"]["name"].rpartition("-")[2]) * 60, timezone.utc)


def closed_window() -> str:
    """A daily window that opens three hours from now: closed for the whole test."""
    hour = (datetime.now(timezone.utc).hour + 3) % 24
    return f"* {hour:02d}:00-{(hour + 1) % 24:02d}:00"


def conditions(schedule: dict) -> dict[str, dict]:
    return {c["type"]: c for c in (schedule.get("status") or {}).get("conditions", [])}


def test_the_apiserver_refuses_bad_schedules(api_client, namespace, schedules):
    template = {"source": {"region": "us-east-1", "snapshotIdentifier": "s"}, "target": {"clusterIdentifier": "x"}}
    for name, spec, says in [
        ("bad-cron", {"schedule": "@daily", "template": template}, "spec.schedule"),
        ("bad-random", {"schedule": "R * * * *", "template": template}, "spec.schedule"),  # croniter's random
        ("bad-window", {"schedule": "* * * * *", "windows": ["Sat 1-5"], "template": template}, "spec.windows"),
        ("bad-target", {"schedule": "* * * * *", "template": {**template, "target": {"clusterIdentifier": "x_{day}"}}},
         "clusterIdentifier"),
        ("s" * 53, {"schedule": "* * * * *", "template": template}, "at most 52 characters"),
    ]:
        with pytest.raises(ApiException) as error:
            schedules(name, spec)
        assert error.value.status == 422 and says in error.value.body, (name, error.value.body)


def test_schedules_on_the_minute(api_client, aws, simulator, operator, namespace, uniq, schedules):
    rds = aws.client("rds", region_name="us-east-1")
    make_source(rds, f"src-{uniq}", [f"snap-{uniq}", f"busy-{uniq}"])
    # Runs restoring `busy` stay in ResolvingSnapshot (it never finishes being created): unfinished on purpose.
    simulator.set_rds_status("cluster-snapshot", f"busy-{uniq}", "creating", "us-east-1")

    def dry(snapshot: str, target: str) -> dict:
        return {"source": {"region": "us-east-1", "snapshotIdentifier": snapshot},
                "target": {"clusterIdentifier": target}, "dryRun": True}

    every_minute = "* * * * *"
    try:
        first = next_boundary_with_room()
        second = first + timedelta(minutes=1)
        made = [schedules("history", {"schedule": every_minute, "successfulRunsHistoryLimit": 1,
                                      "template": dry(f"snap-{uniq}", f"hist-{uniq}-{{date}}{{time}}")})]
        made.append(schedules("cascade", {"schedule": every_minute, "template": {
            "source": {"region": "us-east-1", "snapshotIdentifier": f"snap-{uniq}"},
            "target": {"clusterIdentifier": f"gc-{uniq}-{{time}}", "instances": {"count": 1}},
            "deletionPolicy": "Delete"}}))
        for name, policy in (("forbid", "Forbid"), ("replace", "Replace"), ("allow", "Allow")):
            made.append(schedules(name, {"schedule": every_minute, "concurrencyPolicy": policy,
                                         "template": dry(f"busy-{uniq}", f"{name}-{uniq}-{{time}}")}))
        made.append(schedules("suspended", {"schedule": every_minute, "suspend": True,
                                            "template": dry(f"snap-{uniq}", "s")}))
        made.append(schedules("waits", {"schedule": every_minute, "windows": [closed_window()],
                                        "template": dry(f"snap-{uniq}", "w")}))
        made.append(schedules("missed", {"schedule": every_minute, "windows": [closed_window()],
                                         "startingDeadlineSeconds": 30, "template": dry(f"snap-{uniq}", "m")}))
        # Due once, at `first`, outside its window, which opens at `second`: the run waits and starts then.
        window = f"* {second:%H:%M}-{second + timedelta(hours=1):%H:%M}"
        made.append(schedules("opens", {"schedule": f"{first.minute} {first.hour} * * *", "windows": [window],
                                        "template": dry(f"snap-{uniq}", "o")}))
        # Its runs fail at once (no such snapshot): only the newest failed one is kept.
        made.append(schedules("fails", {"schedule": every_minute, "failedRunsHistoryLimit": 1,
                                        "template": dry(f"missing-{uniq}", "f")}))
        made.append(schedules("bad-zone", {"schedule": every_minute, "timeZone": "Mars/Olympus",
                                           "template": dry(f"snap-{uniq}", "z")}))
        late = [m["metadata"]["name"] for m in made if parse(m["metadata"]["creationTimestamp"]) >= first]
        assert late == [], f"created after {first}: the test's minute arithmetic does not hold"
        created = made[0]

        # An invalid time zone: a condition and a Warning, never a run (no minute boundary needed).
        bad = wait_until(lambda: (s := get_schedule(api_client, namespace, "bad-zone")).get("status") and s,
                         what="bad-zone's status")
        invalid = conditions(bad)["InvalidSchedule"]
        assert (invalid["status"], invalid["reason"]) == ("True", "InvalidTimeZone") and "Mars/Olympus" in invalid["message"]
        assert conditions(bad)["Ready"]["status"] == "False"
        assert [(e.type, e.reason) for e in events_for(api_client, namespace, "bad-zone")] == [
            ("Warning", "InvalidTimeZone")]

        # --- the first boundary ---
        cascade_first = wait_until(lambda: runs_of(api_client, namespace, "cascade").get(run_name("cascade", first)),
                                   timeout=120, what="cascade's first run")
        patch_schedule(api_client, namespace, "cascade", {"suspend": True})  # one run is enough; it goes on

        history_first = wait_until(lambda: runs_of(api_client, namespace, "history").get(run_name("history", first)),
                                   timeout=90, what="history's first run")
        meta = history_first["metadata"]
        assert meta["annotations"][SCHEDULED_TIME_ANNOTATION] == first.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert parse(meta["creationTimestamp"]) >= first  # not before it was due
        [owner] = meta["ownerReferences"]
        assert (owner["kind"], owner["name"], owner["uid"], owner["controller"], owner["blockOwnerDeletion"]) == (
            SCHEDULE_KIND, "history", created["metadata"]["uid"], True, True)
        local = first.strftime("%Y%m%d%H%M")
        assert history_first["spec"]["target"]["clusterIdentifier"] == f"hist-{uniq}-{local}"
        planned = wait_for_phase(api_client, namespace, run_name("history", first), "Planned", timeout=90)

        for name in ("forbid", "replace", "allow"):
            wait_until(lambda: run_name(name, first) in runs_of(api_client, namespace, name), timeout=90,
                       what=f"{name}'s first run")
        missed = wait_until(lambda: (s := get_schedule(api_client, namespace, "missed")).get("status", {}).get(
            "lastSkippedTime") and s, timeout=90, what="missed's skip")
        assert parse(missed["status"]["lastSkippedTime"]) == first
        assert {e.reason for e in events_for(api_client, namespace, "missed") if e.type == "Warning"} == {"MissedWindow"}
        waits = get_schedule(api_client, namespace, "waits")
        assert "waits for a window" in waits["status"]["message"], waits["status"]
        wait_for_phase(api_client, namespace, run_name("fails", first), "Failed", timeout=90)
        opens, opens_runs = get_schedule(api_client, namespace, "opens"), runs_of(api_client, namespace, "opens")
        if datetime.now(timezone.utc) < second:  # read before its window opened (a slow machine may be past it)
            assert opens_runs == {} and "waits for a window" in opens["status"]["message"], opens["status"]

        # --- the second boundary ---
        sleep_until(second + timedelta(seconds=1))
        history = wait_until(lambda: (runs := runs_of(api_client, namespace, "history")).get(
            run_name("history", second)) and run_name("history", first) not in runs and runs, timeout=90,
            what="history's second run, and its first one deleted (successfulRunsHistoryLimit 1)")
        assert run_name("history", first) not in history and run_name("history", second) in history
        status = get_schedule(api_client, namespace, "history")["status"]
        assert parse(status["lastSuccessfulTime"]) >= parse(planned["status"]["completedAt"])

        opened = wait_until(lambda: runs_of(api_client, namespace, "opens").get(run_name("opens", first)),
                            timeout=90, what="opens' run, due at the first boundary, started when its window opened")
        assert parse(opened["metadata"]["creationTimestamp"]) >= second
        assert list(runs_of(api_client, namespace, "opens")) == [run_name("opens", first)]
        wait_until(lambda: run_name("fails", first) not in runs_of(api_client, namespace, "fails"), timeout=90,
                   what="fails' first run deleted once a newer one failed (failedRunsHistoryLimit 1)")

        allow = wait_until(lambda: (runs := runs_of(api_client, namespace, "allow")).get(
            run_name("allow", second)) and runs, timeout=90, what="allow's second run beside the first")
        assert {run_name("allow", first), run_name("allow", second)} <= set(allow)
        replace = wait_until(lambda: run_name("replace", first) not in (runs := runs_of(
            api_client, namespace, "replace")) and runs, timeout=90, what="replace's first run cancelled and gone")
        assert min(scheduled_of(run) for run in replace.values()) >= second
        assert "RunReplaced" in [e.reason for e in events_for(api_client, namespace, "replace")]
        forbid = get_schedule(api_client, namespace, "forbid")
        assert list(runs_of(api_client, namespace, "forbid")) == [run_name("forbid", first)]
        assert "Forbid" in forbid["status"]["message"] and forbid["status"]["active"][0]["name"] == run_name(
            "forbid", first)
        assert runs_of(api_client, namespace, "suspended") == {}
        assert conditions(get_schedule(api_client, namespace, "suspended"))["Suspended"]["status"] == "True"
        assert runs_of(api_client, namespace, "waits") == {} and runs_of(api_client, namespace, "missed") == {}
        assert list(runs_of(api_client, namespace, "cascade")) == [run_name("cascade", first)]

        # --- suspend back to false: one run for the most recent due time, not one per minute it missed ---
        resumed = datetime.now(timezone.utc)  # before the patch: the operator sees it after this instant
        patch_schedule(api_client, namespace, "suspended", {"suspend": False})
        woken = wait_until(lambda: runs_of(api_client, namespace, "suspended"), timeout=90,
                           what="suspended's run after resuming")
        times = sorted(scheduled_of(run) for run in woken.values())
        assert times[0] >= minute_of(resumed), times  # none of the minutes it was suspended over but the last

        # --- the cascade: the schedule goes, the garbage collector deletes its run, its finalizer its cluster ---
        cluster = cascade_first["spec"]["target"]["clusterIdentifier"]
        wait_for_phase(api_client, namespace, run_name("cascade", first), "Succeeded", timeout=120)
        assert rds.describe_db_clusters(DBClusterIdentifier=cluster)["DBClusters"]
        client.CustomObjectsApi(api_client).delete_namespaced_custom_object(
            GROUP, VERSION, namespace, SCHEDULE_PLURAL, "cascade")
        wait_until(lambda: runs_of(api_client, namespace, "cascade") == {}, timeout=90,
                   what="the garbage collector deleting cascade's run")
        wait_until(lambda: rds.describe_db_clusters(Filters=[{"Name": "db-cluster-id", "Values": [cluster]}])[
            "DBClusters"] == [], timeout=90, what=f"{cluster} deleted (deletionPolicy Delete)")
    finally:
        simulator.set_rds_status("cluster-snapshot", f"busy-{uniq}", None, "us-east-1")


@pytest.mark.own_policies
def test_one_catch_up_run_after_downtime_under_the_current_policy(api_client, aws, operator, namespace, uniq,
                                                                   schedules):
    """The operator is down over two due times: it starts one run, the most recent. Each run is an ordinary
    AuroraRestore, so a policy changed meanwhile applies to it."""
    rds = aws.client("rds", region_name="us-east-1")
    make_source(rds, f"src-{uniq}", [f"snap-{uniq}"])
    policy = f"schedule-{namespace}"
    create_policy(api_client, policy, {"namespaces": [namespace], "targets": [{}], "sources": [{}]})
    try:
        created = schedules("catch-up", {"schedule": "* * * * *", "template": {
            "source": {"region": "us-east-1", "snapshotIdentifier": f"snap-{uniq}"},
            "target": {"clusterIdentifier": f"cu-{uniq}"}, "dryRun": True}})
        first = first_due(created)
        wait_until(lambda: run_name("catch-up", first) in runs_of(api_client, namespace, "catch-up"), timeout=120,
                   what="the first run")
        operator.kill()  # at once: the next due time must pass while it is down
        killed = datetime.now(timezone.utc)
        client.CustomObjectsApi(api_client).patch_cluster_custom_object(
            GROUP, VERSION, "aurorarestorepolicies", policy, {"spec": {"targets": [{"clusterIdentifier": "none-*"}]}})
        # At least two due times pass while it is down.
        sleep_until(minute_of(killed) + timedelta(minutes=2, seconds=1))
        restarted = datetime.now(timezone.utc)
        operator.start()

        def after_the_kill():
            return {name: run for name, run in runs_of(api_client, namespace, "catch-up").items()
                    if scheduled_of(run) > killed}

        later = wait_until(after_the_kill, timeout=120, what="the catch-up run")
        catch_up_time = min(scheduled_of(run) for run in later.values())
        # The most recent due time at the operator's first turn: the restart's minute, or a later one when the
        # restart was slow; none of the minutes it was down over (at least one) got a run.
        assert catch_up_time >= minute_of(restarted), (catch_up_time, restarted, killed)
        name = run_name("catch-up", catch_up_time)
        catch_up = wait_for_phase(api_client, namespace, name, {"Planned", "Failed"}, timeout=90)
        assert catch_up["status"]["failure"]["reason"] == "NotAllowedByPolicy", catch_up["status"]
        assert parse(get_schedule(api_client, namespace, "catch-up")["status"]["lastScheduleTime"]) >= catch_up_time
    finally:
        delete_policy(api_client, policy)

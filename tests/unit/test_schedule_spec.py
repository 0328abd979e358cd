"""AuroraRestoreSchedule: the models, the generated CRD, and one turn of the controller against in-memory gateways
(what it creates, deletes and writes for a fixed clock)."""

import copy
import json
import logging
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from aurora_restore.api.crd import build_schedule_crd, render_crd
from aurora_restore.api.schedule import (
    SCHEDULE_LABEL, SCHEDULED_TIME_ANNOTATION, TEMPLATE_IDENTIFIER_PATTERN, AuroraRestoreScheduleSpec,
    AuroraRestoreScheduleStatus,
)
from aurora_restore.k8s.resources import StatusConflict
from aurora_restore.scheduling.controller import (
    Run, ScheduleGateways, describe_invalid_spec, plan_turn, run_name, runs_to_prune, schedule_turn,
)

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = {
    "source": {"region": "us-east-1", "latest": {"clusterIdentifier": "prod"}},
    "target": {"clusterIdentifier": "staging-{date}-{time}"},
    "dryRun": True,
}
LOG = logging.getLogger("test")


def utc(*parts) -> datetime:
    return datetime(*parts, tzinfo=timezone.utc)


def spec(**changes) -> AuroraRestoreScheduleSpec:
    return AuroraRestoreScheduleSpec.model_validate({"schedule": "0 * * * *", "template": TEMPLATE, **changes})


# --- models --------------------------------------------------------------------------------------------------------


def test_defaults():
    s = spec()
    assert (s.time_zone, s.concurrency_policy, s.suspend, s.starting_deadline_seconds) == ("UTC", "Forbid", False, None)
    assert (s.successful_runs_history_limit, s.failed_runs_history_limit, s.windows) == (3, 1, [])


def test_the_run_spec_fills_in_the_placeholders_in_the_time_zone():
    run = spec(timeZone="Europe/Berlin").run_spec(utc(2026, 12, 31, 23, 30))
    assert run["target"]["clusterIdentifier"] == "staging-20270101-0030"
    assert run["source"] == TEMPLATE["source"] and run["dryRun"] is True
    assert TEMPLATE["target"]["clusterIdentifier"] == "staging-{date}-{time}"  # the template is left as it was


@pytest.mark.parametrize("changes, field", [
    ({"schedule": "61 * * * *"}, "spec.schedule"),
    ({"schedule": "@daily"}, "spec.schedule"),
    ({"timeZone": "Mars/Olympus"}, "spec.timeZone"),
    ({"windows": ["Sat 1-5"]}, "spec.windows"),
    ({"startingDeadlineSeconds": -1}, "spec.startingDeadlineSeconds"),
    ({"concurrencyPolicy": "Sometimes"}, "spec.concurrencyPolicy"),
])
def test_invalid_fields_are_named(changes, field):
    with pytest.raises(ValidationError) as error:
        spec(**changes)
    reason, message = describe_invalid_spec(error.value)
    assert field in message and message.startswith("invalid schedule: ")


def test_invalid_reasons_name_the_problem():
    for changes, expected in [({"schedule": "61 * * * *"}, "InvalidCron"), ({"timeZone": "Nowhere/X"}, "InvalidTimeZone"),
                              ({"windows": ["Sun 02:00-02:00"]}, "InvalidWindow")]:
        with pytest.raises(ValidationError) as error:
            spec(**changes)
        assert describe_invalid_spec(error.value)[0] == expected


def test_a_template_that_makes_invalid_runs_is_refused_naming_the_template_field():
    too_long = copy.deepcopy(TEMPLATE)
    too_long["target"]["clusterIdentifier"] = "a" * 50 + "-{date}-{time}"  # 64 characters once filled in
    with pytest.raises(ValidationError) as error:
        spec(template=too_long)
    reason, message = describe_invalid_spec(error.value)
    assert reason == "InvalidTemplate" and "template.target.clusterIdentifier" in message
    no_source = {"target": {"clusterIdentifier": "x"}}
    with pytest.raises(ValidationError, match="template.source"):
        spec(template=no_source)


def test_a_drill_template_is_an_ordinary_template():
    drill = {**TEMPLATE, "dryRun": False, "drill": {"keepFor": "1h"}}
    assert spec(template=drill).run_spec(utc(2026, 1, 1))["drill"] == {"keepFor": "1h"}


# --- the CRD -------------------------------------------------------------------------------------------------------


def schedule_schema() -> dict:
    return build_schedule_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def test_committed_schedule_crd_matches_in_both_places():
    crd = build_schedule_crd()
    for folder in ("crds", "helm/aurora-restore-operator/crds"):
        assert (REPO / folder / "aurorarestoreschedules.dbrestore.io.yaml").read_text() == render_crd(crd)


def test_schedule_crd_names_status_and_columns():
    crd = build_schedule_crd()
    assert crd["metadata"]["name"] == "aurorarestoreschedules.dbrestore.io"
    assert crd["spec"]["scope"] == "Namespaced"
    assert crd["spec"]["names"]["kind"] == "AuroraRestoreSchedule"
    assert crd["spec"]["names"]["shortNames"] == ["ars"]
    [version] = crd["spec"]["versions"]
    assert version["subresources"] == {"status": {}}
    assert [c["name"] for c in version["additionalPrinterColumns"]] == [
        "Schedule", "Suspend", "Active", "Last Schedule", "Last Success", "Next", "Age", "Message"]


def test_the_template_schema_is_the_restore_spec_with_placeholders_allowed():
    template = schedule_schema()["properties"]["spec"]["properties"]["template"]
    assert template["required"] == ["source", "target"]
    identifier = template["properties"]["target"]["properties"]["clusterIdentifier"]
    assert identifier["pattern"] == TEMPLATE_IDENTIFIER_PATTERN
    rules = [rule["rule"] for rule in template["x-kubernetes-validations"]]
    assert "self == oldSelf" not in rules and any("masterPassword" in rule for rule in rules)
    assert template["properties"]["source"]["x-kubernetes-validations"]  # the nested restore rules apply too


def test_the_template_rules_name_their_fields_under_spec_template():
    from aurora_restore.api.crd import build_crd

    def messages(node) -> list[str]:
        if isinstance(node, dict):
            own = [rule["message"] for rule in node.get("x-kubernetes-validations", []) if "message" in rule]
            return own + [m for value in node.values() for m in messages(value)]
        return [m for value in node for m in messages(value)] if isinstance(node, list) else []

    template = messages(schedule_schema()["properties"]["spec"]["properties"]["template"])
    assert "spec.template.source needs exactly one of snapshotIdentifier, latest, pointInTime or clone" in template
    assert not [m for m in template if "spec." in m.replace("spec.template.", "")]
    restore = messages(build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"])
    assert "spec.source needs exactly one of snapshotIdentifier, latest, pointInTime or clone" in restore  # not changed


def test_the_schedule_name_is_limited_so_run_names_fit_a_label():
    [rule] = schedule_schema()["x-kubernetes-validations"]
    assert "52" in rule["rule"]
    assert len(run_name("s" * 52, utc(2150, 1, 1))) <= 63


def test_schedule_spec_properties_have_descriptions():
    spec_schema = schedule_schema()["properties"]["spec"]
    assert spec_schema["required"] == ["schedule", "template"]
    assert all(node.get("description") for node in spec_schema["properties"].values())
    assert spec_schema["properties"]["concurrencyPolicy"]["default"] == "Forbid"


def test_the_example_schedule_validates():
    example = yaml.safe_load((REPO / "examples" / "schedule-nightly-staging.yaml").read_text())
    assert example["kind"] == "AuroraRestoreSchedule"
    AuroraRestoreScheduleSpec.model_validate(example["spec"])


# --- plan_turn -----------------------------------------------------------------------------------------------------


def run(name: str, scheduled: datetime, phase: str | None, deleting=False, owes_work=False) -> Run:
    from aurora_restore.api.phase import Phase

    return Run(name=name, uid=f"uid-{name}", scheduled=scheduled, phase=Phase(phase) if phase else None,
               completed_at=scheduled + timedelta(minutes=5) if phase in ("Succeeded", "Planned") else None,
               deleting=deleting, owes_work=owes_work)


EMPTY = AuroraRestoreScheduleStatus()


def test_plan_starts_a_due_run_and_names_it_by_minutes():
    plan = plan_turn(spec(), EMPTY, [], "nightly", created=utc(2026, 1, 1, 11, 30), now=utc(2026, 1, 1, 12, 0, 1))
    assert plan.start == utc(2026, 1, 1, 12)
    assert run_name("nightly", plan.start) == f"nightly-{int(utc(2026, 1, 1, 12).timestamp()) // 60}"


def test_a_run_made_before_status_was_written_counts_as_made():
    made = run("nightly-x", utc(2026, 1, 1, 12), None)
    plan = plan_turn(spec(), EMPTY, [made], "nightly", created=utc(2026, 1, 1, 11), now=utc(2026, 1, 1, 12, 0, 5))
    assert plan.start is None and plan.wake_at == utc(2026, 1, 1, 13)


@pytest.mark.parametrize("policy", ["Forbid", "Replace", "Allow"])
def test_concurrency_policies(policy):
    busy = run("nightly-a", utc(2026, 1, 1, 11), "RestoringCluster")
    status = AuroraRestoreScheduleStatus(last_schedule_time=utc(2026, 1, 1, 11))
    plan = plan_turn(spec(concurrencyPolicy=policy), status, [busy], "nightly", utc(2026, 1, 1), utc(2026, 1, 1, 12, 0, 1))
    if policy == "Forbid":
        assert plan.start is None and "nightly-a" in plan.message and "Forbid" in plan.message
    else:
        assert plan.start == utc(2026, 1, 1, 12)
        assert plan.replace == ([busy] if policy == "Replace" else [])


def test_suspended_creates_nothing():
    plan = plan_turn(spec(suspend=True), EMPTY, [], "nightly", utc(2026, 1, 1), utc(2026, 1, 1, 12, 0, 1))
    assert plan.start is None and plan.skip is None and "suspended" in plan.message


def test_history_limits_keep_the_newest_finished_runs():
    t = utc(2026, 1, 1)
    runs = [run(f"ok-{i}", t + timedelta(hours=i), "Succeeded" if i % 2 else "Planned") for i in range(5)]
    runs += [run(f"bad-{i}", t + timedelta(hours=10 + i), "Failed" if i else "Cancelled") for i in range(3)]
    runs += [run("busy", t + timedelta(hours=20), "Verifying"), run("going", t, "Succeeded", deleting=True),
             run("drill", t - timedelta(hours=1), "Succeeded", owes_work=True)]
    assert [r.name for r in runs_to_prune(runs, 3, 1)] == ["ok-0", "ok-1", "bad-0", "bad-1"]
    assert [r.name for r in runs_to_prune(runs, 0, 0)] == ["ok-0", "ok-1", "ok-2", "ok-3", "ok-4", "bad-0", "bad-1",
                                                          "bad-2"]


# --- one turn against in-memory gateways ---------------------------------------------------------------------------


class FakeSchedules:
    def __init__(self, obj):
        self.obj, self.writes = obj, []

    def get(self, namespace, name):
        return copy.deepcopy(self.obj)

    def patch_status(self, namespace, name, status, resource_version):
        if resource_version != self.obj["metadata"]["resourceVersion"]:
            raise StatusConflict(name)
        self.obj["status"] = status
        self.obj["metadata"]["resourceVersion"] = str(int(resource_version) + 1)
        self.writes.append(status)


class FakeRuns:
    def __init__(self):
        self.objects: dict[str, dict] = {}
        self.deleted: list[str] = []
        self.creates = 0

    def list(self, namespace, schedule):
        return [copy.deepcopy(o) for o in self.objects.values()
                if o["metadata"]["labels"].get(SCHEDULE_LABEL) == schedule]

    def get(self, namespace, name):
        return copy.deepcopy(self.objects.get(name))

    def create(self, namespace, body):
        self.creates += 1
        name = body["metadata"]["name"]
        if name in self.objects:
            return None
        obj = copy.deepcopy(body)
        obj["metadata"].update(uid=f"uid-{name}", creationTimestamp="2026-01-01T00:00:00Z")
        self.objects[name] = obj
        return copy.deepcopy(obj)

    def delete(self, namespace, name):
        self.deleted.append(name)
        self.objects.pop(name, None)


class FakeEvents:
    def __init__(self):
        self.events = []

    def record(self, obj, event_type, reason, message):
        self.events.append((event_type, reason, message))


def schedule_object(**spec_changes) -> dict:
    return {
        "apiVersion": "dbrestore.io/v1alpha1", "kind": "AuroraRestoreSchedule",
        "metadata": {"name": "nightly", "namespace": "ns", "uid": "sched-uid", "generation": 1,
                     "resourceVersion": "1", "creationTimestamp": "2026-01-01T11:30:00Z"},
        "spec": {"schedule": "0 * * * *", "template": TEMPLATE, **spec_changes},
    }


def gateways(obj) -> ScheduleGateways:
    return ScheduleGateways(FakeSchedules(obj), FakeRuns(), FakeEvents(), poll_seconds=30)


def test_a_turn_creates_the_owned_run_and_records_it():
    gw = gateways(schedule_object())
    delay = schedule_turn(gw, "ns", "nightly", LOG, now=utc(2026, 1, 1, 12, 0, 1))
    assert delay == 0
    [made] = gw.runs.objects.values()
    assert made["metadata"]["labels"] == {SCHEDULE_LABEL: "nightly"}
    assert made["metadata"]["annotations"] == {SCHEDULED_TIME_ANNOTATION: "2026-01-01T12:00:00Z"}
    assert made["metadata"]["ownerReferences"] == [{
        "apiVersion": "dbrestore.io/v1alpha1", "kind": "AuroraRestoreSchedule", "name": "nightly",
        "uid": "sched-uid", "controller": True, "blockOwnerDeletion": True}]
    assert made["spec"]["target"]["clusterIdentifier"] == "staging-20260101-1200"
    status = gw.schedules.obj["status"]
    assert status["lastScheduleTime"] == "2026-01-01T12:00:00Z" and status["nextScheduleTime"] == "2026-01-01T13:00:00Z"
    assert status["active"] == [{"name": made["metadata"]["name"], "uid": made["metadata"]["uid"]}]
    assert [e[1] for e in gw.events.events] == ["RunCreated"]
    # The next turn (at once) only waits for 13:00.
    delay = schedule_turn(gw, "ns", "nightly", LOG, now=utc(2026, 1, 1, 12, 0, 2))
    assert len(gw.runs.objects) == 1 and 29 < delay <= 30


def test_a_turn_killed_before_its_status_write_creates_no_second_run():
    gw = gateways(schedule_object(concurrencyPolicy="Forbid"))
    gw.schedules.obj["metadata"]["resourceVersion"] = "1"
    gw.schedules.patch_status = lambda *args: (_ for _ in ()).throw(StatusConflict("x"))  # the write never lands
    with pytest.raises(StatusConflict):
        schedule_turn(gw, "ns", "nightly", LOG, now=utc(2026, 1, 1, 12, 0, 1))
    gw.schedules.patch_status = FakeSchedules.patch_status.__get__(gw.schedules)
    schedule_turn(gw, "ns", "nightly", LOG, now=utc(2026, 1, 1, 12, 0, 3))
    assert len(gw.runs.objects) == 1
    assert gw.schedules.obj["status"]["lastScheduleTime"] == "2026-01-01T12:00:00Z"
    assert "Forbid" not in gw.schedules.obj["status"]["message"]  # it did not wait for its own run


def test_replace_deletes_the_unfinished_run_first():
    gw = gateways(schedule_object(concurrencyPolicy="Replace"))
    schedule_turn(gw, "ns", "nightly", LOG, now=utc(2026, 1, 1, 12, 0, 1))
    [first] = list(gw.runs.objects)
    schedule_turn(gw, "ns", "nightly", LOG, now=utc(2026, 1, 1, 13, 0, 1))
    assert gw.runs.deleted == [first] and len(gw.runs.objects) == 1 and first not in gw.runs.objects
    assert [e[1] for e in gw.events.events] == ["RunCreated", "RunReplaced", "RunCreated"]


def test_an_invalid_time_zone_is_a_condition_and_one_warning():
    gw = gateways(schedule_object(timeZone="Mars/Olympus"))
    for second in (1, 2):
        assert schedule_turn(gw, "ns", "nightly", LOG, now=utc(2026, 1, 1, 12, 0, second)) == 30
    assert gw.runs.objects == {}
    conditions = {c["type"]: c for c in gw.schedules.obj["status"]["conditions"]}
    assert conditions["InvalidSchedule"]["status"] == "True" and conditions["InvalidSchedule"]["reason"] == "InvalidTimeZone"
    assert conditions["Ready"]["status"] == "False"
    assert [(e[0], e[1]) for e in gw.events.events] == [("Warning", "InvalidTimeZone")]


def test_a_missed_window_is_skipped_with_a_warning():
    gw = gateways(schedule_object(windows=["* 01:00-05:00"], startingDeadlineSeconds=60))
    schedule_turn(gw, "ns", "nightly", LOG, now=utc(2026, 1, 1, 12, 0, 1))
    assert gw.runs.objects == {}
    assert gw.schedules.obj["status"]["lastSkippedTime"] == "2026-01-01T12:00:00Z"
    assert [(e[0], e[1]) for e in gw.events.events] == [("Warning", "MissedWindow")]
    schedule_turn(gw, "ns", "nightly", LOG, now=utc(2026, 1, 1, 12, 0, 2))
    assert len(gw.events.events) == 1  # skipped once


def test_runs_of_another_schedule_object_of_the_same_name_are_ignored():
    gw = gateways(schedule_object())
    stale = {"metadata": {"name": "nightly-1", "uid": "u1", "labels": {SCHEDULE_LABEL: "nightly"},
                          "creationTimestamp": "2026-01-01T12:00:00Z",
                          "annotations": {SCHEDULED_TIME_ANNOTATION: "2026-01-01T12:00:00Z"},
                          "ownerReferences": [{"uid": "an-older-schedule"}]}, "status": {}}
    gw.runs.objects["nightly-1"] = stale
    schedule_turn(gw, "ns", "nightly", LOG, now=utc(2026, 1, 1, 12, 0, 1))
    assert len(gw.runs.objects) == 2


def test_every_schedule_property_has_a_description():
    from tests.unit.test_crd import walk

    root = schedule_schema()["properties"]
    missing = [path for part in ("spec", "status") for path, node in walk(root[part], part)
               if not node.get("description")]
    assert missing == []


def api_error(status: int, reason: str, message: str) -> ApiException:
    error = ApiException(status=status, reason=reason)
    error.body = json.dumps({"kind": "Status", "reason": reason, "message": message})
    return error


def test_a_turn_exports_the_largest_gap_between_due_times_as_the_period():
    from aurora_restore.obs import metrics

    gw = gateways(schedule_object(schedule="0 2 * * Mon-Fri"))
    schedule_turn(gw, "ns", "nightly", LOG, now=utc(2026, 1, 1, 12, 0, 1))  # a Thursday
    # Fri 02:00 to Mon 02:00 is the largest gap among the next ones; a day is the usual one.
    assert metrics.SCHEDULE_PERIOD.labels(namespace="ns", schedule="nightly")._value.get() == 3 * 86400
    gw = gateways(schedule_object(schedule="*/20 * * * *"))
    schedule_turn(gw, "ns", "nightly", LOG, now=utc(2026, 1, 1, 12, 0, 1))
    assert metrics.SCHEDULE_PERIOD.labels(namespace="ns", schedule="nightly")._value.get() == 1200
    gw = gateways(schedule_object(schedule="*/20 * * * *", suspend=True))  # a suspended schedule misses nothing
    schedule_turn(gw, "ns", "nightly", LOG, now=utc(2026, 1, 1, 12, 0, 2))
    assert ("ns", "nightly") not in metrics.SCHEDULE_PERIOD._metrics


def test_a_foreign_object_with_the_run_name_is_not_counted_and_that_time_is_skipped():
    gw = gateways(schedule_object())
    name = run_name("nightly", utc(2026, 1, 1, 12))
    gw.runs.objects[name] = {"metadata": {"name": name, "uid": "foreign", "labels": {},
                                          "creationTimestamp": "2026-01-01T11:59:00Z"}, "status": {}}
    assert schedule_turn(gw, "ns", "nightly", LOG, now=utc(2026, 1, 1, 12, 0, 1)) == 0
    status = gw.schedules.obj["status"]
    assert status["lastSkippedTime"] == "2026-01-01T12:00:00Z" and "not created by this schedule" in status["message"]
    assert status.get("active", []) == [] and status.get("lastScheduleTime") is None
    assert [(e[0], e[1]) for e in gw.events.events] == [("Warning", "RunNameTaken")]
    schedule_turn(gw, "ns", "nightly", LOG, now=utc(2026, 1, 1, 12, 0, 2))  # the next turn waits for 13:00
    assert gw.runs.creates == 1 and len(gw.events.events) == 1


@pytest.mark.parametrize("status_code, reason", [(403, "Forbidden"), (409, "Conflict")])
def test_a_run_the_apiserver_refuses_is_said_once_and_retried(status_code, reason):
    gw = gateways(schedule_object())
    said = 'aurorarestores.dbrestore.io "x" is forbidden: exceeded quota: restores'
    real_create = gw.runs.create

    def refuse(namespace, body):
        gw.runs.creates += 1
        raise api_error(status_code, reason, said)

    gw.runs.create = refuse
    for second in (1, 2):
        assert schedule_turn(gw, "ns", "nightly", LOG, now=utc(2026, 1, 1, 12, 0, second)) == 30
    assert gw.runs.objects == {} and gw.runs.creates == 2
    status = gw.schedules.obj["status"]
    assert said in status["message"]
    ready = conditions_of(status)["Ready"]
    assert (ready["status"], ready["reason"]) == ("False", "RunRefused")
    assert conditions_of(status)["InvalidSchedule"]["status"] == "False"
    assert [(e[0], e[1]) for e in gw.events.events] == [("Warning", "RunRefused")]
    gw.runs.create = real_create  # the quota is raised: the same due time starts at the next turn
    schedule_turn(gw, "ns", "nightly", LOG, now=utc(2026, 1, 1, 12, 0, 3))
    assert list(gw.runs.objects) == [run_name("nightly", utc(2026, 1, 1, 12))]
    assert conditions_of(gw.schedules.obj["status"])["Ready"]["status"] == "True"


def conditions_of(status: dict) -> dict[str, dict]:
    return {c["type"]: c for c in status["conditions"]}


def test_the_scheduled_time_is_read_from_the_name_not_the_annotation():
    gw = gateways(schedule_object(concurrencyPolicy="Allow"))
    schedule_turn(gw, "ns", "nightly", LOG, now=utc(2026, 1, 1, 12, 0, 1))
    [made] = gw.runs.objects.values()
    made["metadata"]["annotations"][SCHEDULED_TIME_ANNOTATION] = "2099-01-01T00:00:00Z"  # edited by someone
    gw.schedules.obj["status"].pop("lastScheduleTime")
    assert Run.from_object(made).scheduled == utc(2026, 1, 1, 12)
    schedule_turn(gw, "ns", "nightly", LOG, now=utc(2026, 1, 1, 13, 0, 1))
    assert sorted(gw.runs.objects) == sorted([run_name("nightly", utc(2026, 1, 1, 12)),
                                              run_name("nightly", utc(2026, 1, 1, 13))])

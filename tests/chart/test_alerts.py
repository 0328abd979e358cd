"""The chart's alerts: promtool checks the rendered PrometheusRule and runs alerts-test.yaml's unit tests on it.

The unit tests run on a copy of the rules without annotations (promtool would otherwise compare every alert's
rendered text); `promtool check rules` still parses the annotation templates of the full rules.
"""

import json
import re
from pathlib import Path

import pytest
import yaml
from helm_cli import CHART, HelmError, find
from promtool_cli import Promtool, exported_metric_names, write_rules

from aurora_restore.obs.metrics import RestoresInProgress
from aurora_restore_devenv.controlplane.binaries import find_promtool

TESTS_FILE = Path(__file__).with_name("alerts-test.yaml")
RULE_VALUES = {"prometheusRule": {"enabled": True}}


@pytest.fixture(scope="module")
def promtool() -> Promtool:
    return Promtool(find_promtool())


@pytest.fixture(scope="module")
def groups(helm) -> list[dict]:
    return find(helm.template(RULE_VALUES), "PrometheusRule")["spec"]["groups"]


def alerts_of(groups: list[dict]) -> dict[str, dict]:
    return {rule["alert"]: rule for group in groups for rule in group["rules"] if "alert" in rule}


def test_no_rule_by_default(helm):
    assert not [obj for obj in helm.template() if obj["kind"] == "PrometheusRule"]


def test_the_rendered_rules_pass_promtool_check(groups, promtool, tmp_path):
    promtool.check_rules(write_rules(tmp_path / "rules.yaml", groups))
    for name, alert in alerts_of(groups).items():
        assert alert["annotations"]["summary"] and alert["annotations"]["description"], name
        assert alert["labels"]["severity"] == "warning", name


def test_every_alert_fires_and_stays_quiet_as_its_unit_tests_expect(groups, promtool, tmp_path):
    bare = [{**group, "rules": [{k: v for k, v in rule.items() if k != "annotations"} for rule in group["rules"]]}
            for group in groups]
    tests = yaml.safe_load(TESTS_FILE.read_text())
    tests["rule_files"] = [str(write_rules(tmp_path / "rules.yaml", bare))]
    tests_file = tmp_path / "alerts-test.yaml"
    tests_file.write_text(yaml.safe_dump(tests, sort_keys=False))
    promtool.test_rules(tests_file)

    cases = [case for test in tests["tests"] for case in test.get("alert_rule_test", [])]
    firing = {case["alertname"] for case in cases if case.get("exp_alerts")}
    quiet = {case["alertname"] for case in cases if not case.get("exp_alerts")}
    alerts = set(alerts_of(groups))
    assert alerts - firing == set(), "alerts without a unit test where they fire"
    assert alerts - quiet == set(), "alerts without a unit test where they stay quiet"
    assert (firing | quiet) - alerts == set(), "unit tests of alerts the chart does not have"


def test_alerts_use_only_metrics_the_operator_exports(groups):
    exported = exported_metric_names()
    for name, alert in alerts_of(groups).items():
        used = set(re.findall(r"\baurora_restore_[a-z0-9_]+", alert["expr"]))
        assert used and used <= exported, (name, used - exported)


def test_thresholds_labels_and_namespace_come_from_values(helm, promtool, tmp_path):
    rule = find(helm.template({"prometheusRule": {
        "enabled": True, "namespace": "monitoring", "labels": {"release": "prom"}, "alertLabels": {"team": "data"},
        "restoreFailed": {"window": "1h", "severity": "critical"},
        "stuckInPhase": {"seconds": 600, "secondsByPhase": None},
        "scheduleMissed": {"periods": 3},
        "drillObjectiveMissed": {"enabled": False},
    }}), "PrometheusRule")
    assert rule["metadata"]["namespace"] == "monitoring" and rule["metadata"]["labels"]["release"] == "prom"
    alerts = alerts_of(rule["spec"]["groups"])
    assert set(alerts) == {"AuroraRestoreFailed", "AuroraRestoreStuckInPhase", "AuroraRestoreScheduleMissed"}
    assert all(alert["labels"]["team"] == "data" for alert in alerts.values())
    assert alerts["AuroraRestoreFailed"]["labels"]["severity"] == "critical"
    assert "[1h]" in alerts["AuroraRestoreFailed"]["expr"] and "offset 1h" in alerts["AuroraRestoreFailed"]["expr"]
    stuck = alerts["AuroraRestoreStuckInPhase"]["expr"].strip()
    assert stuck == "max by (phase) (aurora_restore_oldest_phase_age_seconds) > 600"
    assert "> 3 * aurora_restore_schedule_period_seconds" in alerts["AuroraRestoreScheduleMissed"]["expr"]
    promtool.check_rules(write_rules(tmp_path / "rules.yaml", rule["spec"]["groups"]))


def test_per_phase_thresholds_name_only_unfinished_phases():
    schema = json.loads((CHART / "values.schema.json").read_text())
    stuck = schema["properties"]["prometheusRule"]["properties"]["stuckInPhase"]["properties"]
    phases = stuck["secondsByPhase"]["propertyNames"]["enum"]
    exported = [sample.labels["phase"] for family in RestoresInProgress().collect()
                if family.name == "aurora_restore_in_progress" for sample in family.samples]
    assert phases == exported


def test_the_schema_refuses_a_threshold_for_a_phase_a_restore_never_waits_in(helm):
    with pytest.raises(HelmError, match="invalid propertyName 'Succeeded'"):
        helm.template({"prometheusRule": {"enabled": True, "stuckInPhase": {"secondsByPhase": {"Succeeded": 60}}}})


def test_lint_is_clean_with_the_rule_and_the_dashboard(helm):
    values = {"prometheusRule": {"enabled": True}, "grafanaDashboard": {"enabled": True}}
    helm.lint(values)
    for kind in ("PrometheusRule", "ConfigMap"):
        obj = find(helm.template(values), kind)
        assert obj["metadata"]["name"].startswith("aurora-restore-")
        assert obj["metadata"]["labels"]["app.kubernetes.io/name"] == "aurora-restore-operator"

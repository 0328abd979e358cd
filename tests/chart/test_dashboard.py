"""The chart's Grafana dashboard: a ConfigMap for the sidecar, whose every panel query parses and uses only metrics
the operator exports.

promtool has no "parse this expression" command, so each query becomes the `expr` of a recording rule in a
temporary rules file, which `promtool check rules` parses. Grafana's own variables ($__rate_interval, $__range)
are not PromQL: they are replaced by durations first.
"""

import json
import re

import pytest
from helm_cli import CHART, find
from promtool_cli import Promtool, exported_metric_names, operator_metric_families, write_rules

from aurora_restore_devenv.controlplane.binaries import find_promtool

GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1d"}


@pytest.fixture(scope="module")
def config_map(helm) -> dict:
    return find(helm.template({"grafanaDashboard": {"enabled": True}}), "ConfigMap")


@pytest.fixture(scope="module")
def dashboard(config_map) -> dict:
    (document,) = config_map["data"].values()
    return json.loads(document)


def panels_of(dashboard: dict) -> list[dict]:
    """Every panel but rows, those inside collapsed rows included."""
    found = []
    for panel in dashboard["panels"]:
        found.extend(panels_of(panel) if panel.get("panels") else [])
        if panel["type"] != "row":
            found.append(panel)
    return found


def queries_of(dashboard: dict) -> dict[str, str]:
    """PromQL of every panel target, by "panel id/refId", with Grafana's variables replaced."""
    queries = {}
    for panel in panels_of(dashboard):
        assert panel.get("targets"), f"panel {panel['title']!r} has no query"
        for target in panel["targets"]:
            expr = target["expr"]
            for variable, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(variable, value)
            assert "$" not in expr, f"panel {panel['title']!r} uses a variable the test does not know: {expr}"
            queries[f"{panel['id']}/{target['refId']}"] = expr
    return queries


def test_no_dashboard_by_default(helm):
    assert not [obj for obj in helm.template() if obj["kind"] == "ConfigMap"]


def test_the_dashboard_is_the_chart_file_with_the_sidecar_label(config_map, dashboard):
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config_map["metadata"]["namespace"] == "ops"
    assert dashboard == json.loads((CHART / "files" / "grafana-dashboard.json").read_text())
    assert dashboard["uid"] and dashboard["title"]


def test_labels_namespace_and_annotations_come_from_values(helm):
    config_map = find(helm.template({"grafanaDashboard": {
        "enabled": True, "namespace": "grafana", "labels": {"grafana_dashboard": None, "dashboards": "aurora"},
        "annotations": {"grafana_folder": "Databases"},
    }}), "ConfigMap")
    assert config_map["metadata"]["namespace"] == "grafana"
    assert config_map["metadata"]["labels"]["dashboards"] == "aurora"
    assert "grafana_dashboard" not in config_map["metadata"]["labels"]  # null drops the default
    assert config_map["metadata"]["annotations"] == {"grafana_folder": "Databases"}


def test_panels_are_well_formed(dashboard):
    panels = panels_of(dashboard)
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels:
        assert panel["title"] and panel["description"] and panel["gridPos"], panel.get("title")
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
    variables = {variable["name"] for variable in dashboard["templating"]["list"]}
    assert "datasource" in variables


def test_every_panel_query_parses(dashboard, tmp_path):
    promtool = Promtool(find_promtool())
    rules = [{"record": f"dashboard:panel_{key.replace('/', '_')}", "expr": expr}
             for key, expr in queries_of(dashboard).items()]
    promtool.check_rules(write_rules(tmp_path / "dashboard-queries.yaml", [{"name": "dashboard", "rules": rules}]))


def test_panels_use_only_metrics_the_operator_exports_and_show_all_of_its_own(dashboard):
    exported = exported_metric_names()
    used = set()
    for key, expr in queries_of(dashboard).items():
        names = set(re.findall(r"\baurora_restore_[a-z0-9_]+", expr))
        assert names, f"query {key} uses no operator metric: {expr}"
        assert names <= exported, f"query {key} uses metrics the operator does not export: {names - exported}"
        used |= names
    shown = {family for family in operator_metric_families()
             if any(name == family or name.startswith(family + "_") for name in used)}
    assert operator_metric_families() - shown == set(), "operator metrics the dashboard does not show"

"""The Argo CD health check (Lua), run with Lua 5.1 (Argo CD's gopher-lua speaks 5.1) on AuroraRestore objects."""

import re

import lupa.lua51 as lua51
import pytest
import yaml
from helm_cli import REPO

from aurora_restore.api.phase import Phase

HEALTH_LUA = REPO / "helm" / "aurora-restore-operator" / "files" / "argocd-health.lua"
ARGOCD_CM = REPO / "examples" / "gitops" / "argocd-cm-health.yaml"
ARGOCD_DOC = REPO / "docs" / "argocd.md"
HEALTH_KEY = "resource.customizations.health.dbrestore.io_AuroraRestore"

IN_PROGRESS = [
    "Pending", "ResolvingSnapshot", "Preflight", "SharingSnapshot", "CopyingSnapshot",
    "RestoringCluster", "CreatingInstances",
    "ConfiguringAccess", "Verifying", "SwappingTarget", "RetiringPrevious", "Publishing", "CleaningUp",
    "Cancelling",
]


def health(obj: dict) -> dict:
    """Evaluate the check as Argo CD does: `obj` is a global table, the script returns {status, message}."""
    runtime = lua51.LuaRuntime(unpack_returned_tuples=True)
    runtime.globals().obj = runtime.table_from(obj, recursive=True)
    result = runtime.execute(HEALTH_LUA.read_text())
    return dict(result.items())


def restore(phase: str | None = None, generation: int = 1, observed: int | None = 1, **status) -> dict:
    obj = {
        "apiVersion": "dbrestore.io/v1alpha1",
        "kind": "AuroraRestore",
        "metadata": {"name": "orders-stage", "namespace": "stage", "generation": generation, "uid": "u-1"},
        "spec": {"source": {"region": "us-east-1", "snapshotIdentifier": "nightly"},
                 "target": {"clusterIdentifier": "orders-stage"}},
    }
    if phase is not None:
        obj["status"] = {"phase": phase, "observedGeneration": observed, "conditions": [], **status}
    return obj


@pytest.mark.parametrize("phase", IN_PROGRESS)
def test_phases_in_progress_are_progressing_with_the_status_message(phase):
    assert health(restore(phase, message=f"working on {phase}")) == {
        "status": "Progressing", "message": f"working on {phase}"
    }


def test_a_phase_without_message_is_named():
    assert health(restore("CopyingSnapshot")) == {"status": "Progressing", "message": "CopyingSnapshot"}


def test_succeeded_is_healthy():
    assert health(restore("Succeeded", message="cluster orders-stage is available")) == {
        "status": "Healthy", "message": "cluster orders-stage is available"
    }
    assert health(restore("Succeeded"))["status"] == "Healthy"


def test_planned_dry_run_is_healthy():
    assert health(restore("Planned", message="would restore nightly into orders-stage")) == {
        "status": "Healthy", "message": "would restore nightly into orders-stage"
    }


def test_failed_is_degraded_with_the_failure_message():
    failure = {"phase": "ResolvingSnapshot", "reason": "SnapshotNotFound", "message": "snapshot nightly not found"}
    assert health(restore("Failed", message="failed", failure=failure)) == {
        "status": "Degraded", "message": "snapshot nightly not found"
    }
    assert health(restore("Failed", message="restore failed: timeout")) == {
        "status": "Degraded", "message": "restore failed: timeout"
    }
    assert health(restore("Failed"))["status"] == "Degraded"


def test_without_status_it_is_progressing():
    assert health(restore(None)) == {
        "status": "Progressing", "message": "Waiting for the operator to accept the restore"
    }
    obj = restore(None)
    obj["status"] = {}
    assert health(obj)["status"] == "Progressing"


def test_a_generation_not_yet_observed_is_progressing_even_when_succeeded():
    assert health(restore("Succeeded", generation=2, observed=1)) == {
        "status": "Progressing", "message": "Waiting for the operator to observe generation 2"
    }
    assert health(restore("Failed", generation=2, observed=None))["status"] == "Progressing"


def test_deletion_is_progressing_whatever_the_phase():
    for phase in ("Succeeded", "Failed", "RestoringCluster"):
        obj = restore(phase)
        obj["metadata"]["deletionTimestamp"] = "2026-11-26T10:00:00Z"
        assert health(obj) == {"status": "Progressing", "message": "Being deleted"}


@pytest.mark.parametrize("phase", [phase.value for phase in Phase])
def test_every_phase_of_the_api_has_a_health(phase):
    """A phase added to the API later falls into Progressing unless it is terminal (then this test says so)."""
    expected = {"Succeeded": "Healthy", "Planned": "Healthy", "Failed": "Degraded", "CleaningUpAfterFailure": "Degraded",
                "Cancelled": "Degraded"}.get(phase, "Progressing")
    assert health(restore(phase))["status"] == expected


def test_argocd_cm_snippet_embeds_the_same_lua():
    config_map = yaml.safe_load(ARGOCD_CM.read_text())
    assert config_map["kind"] == "ConfigMap" and config_map["metadata"]["name"] == "argocd-cm"
    assert config_map["data"] == {HEALTH_KEY: HEALTH_LUA.read_text()}


def test_docs_embed_the_same_lua():
    blocks = re.findall(r"```lua\n(.*?)```", ARGOCD_DOC.read_text(), flags=re.DOTALL)
    assert blocks == [HEALTH_LUA.read_text()]
    assert HEALTH_KEY in ARGOCD_DOC.read_text()


def test_the_docs_configmap_snippet_is_the_example_as_yaml():
    """The ConfigMap the page shows parses, and is the example file's (a line out of the block scalar's indent
    would end it)."""
    [snippet] = re.findall(r"```yaml\n(apiVersion: v1\nkind: ConfigMap\n.*?)```", ARGOCD_DOC.read_text(), flags=re.DOTALL)
    assert yaml.safe_load(snippet) == yaml.safe_load(ARGOCD_CM.read_text())

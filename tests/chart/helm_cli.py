"""helm as the chart tests run it: the binary from find_helm(), an isolated home, values passed as a file."""

import subprocess
from pathlib import Path
from typing import Any

import yaml

from aurora_restore_devenv.controlplane import KUBERNETES_VERSION

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "aurora-restore-operator"
# helm template renders for this version (the control plane's), so Capabilities match what install sees.
KUBE_VERSION = KUBERNETES_VERSION


class HelmError(Exception):
    """helm exited non-zero; the message carries its stderr."""

    def __init__(self, command: list[str], result: subprocess.CompletedProcess[str]):
        self.stderr = result.stderr
        super().__init__(f"`{' '.join(command)}` exited with {result.returncode}:\n{result.stderr}{result.stdout}")


class Helm:
    def __init__(self, binary: Path, home: Path):
        self.binary = binary
        self.home = home
        self.env = {
            # HOME too: helm keeps its Kubernetes discovery cache in $HOME/.kube/cache (with no HOME, in the
            # working directory, that is in the checkout).
            "HOME": str(home),
            "HELM_CACHE_HOME": str(home / "cache"),
            "HELM_CONFIG_HOME": str(home / "config"),
            "HELM_DATA_HOME": str(home / "data"),
            "PATH": "/usr/bin:/bin",
        }
        self.values_files = 0

    def run(self, *args: str, timeout: float = 120) -> str:
        command = [str(self.binary), *args]
        result = subprocess.run(command, env=self.env, capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise HelmError(command, result)
        return result.stdout

    def values_file(self, values: dict[str, Any] | None) -> list[str]:
        if not values:
            return []
        self.values_files += 1
        path = self.home / f"values-{self.values_files}.yaml"
        path.write_text(yaml.safe_dump(values))
        return ["--values", str(path)]

    def lint(self, values: dict[str, Any] | None = None) -> str:
        return self.run("lint", "--strict", str(CHART), *self.values_file(values))

    def template(
        self, values: dict[str, Any] | None = None, release: str = "aurora-restore-operator", namespace: str = "ops"
    ) -> list[dict[str, Any]]:
        """The rendered objects (CRDs excluded, as `helm template` does without --include-crds)."""
        output = self.run(
            "template", release, str(CHART), "--namespace", namespace, "--kube-version", KUBE_VERSION,
            *self.values_file(values),
        )
        return [document for document in yaml.safe_load_all(output) if document]

    def notes(self, values: dict[str, Any] | None = None) -> str:
        """NOTES.txt as `helm install` prints it (a client-side dry run: no cluster needed)."""
        output = self.run(
            "install", "aurora-restore-operator", str(CHART), "--namespace", "ops", "--dry-run=client",
            *self.values_file(values),
        )
        return output[output.index("NOTES:"):]

    def install(self, kubeconfig: Path, release: str, namespace: str, values: dict[str, Any] | None = None) -> str:
        """Never --wait: the control plane has no kubelets, so no Pod ever becomes ready."""
        return self.run(
            "install", release, str(CHART), "--kubeconfig", str(kubeconfig), "--namespace", namespace,
            "--create-namespace", *self.values_file(values),
        )


def find(objects: list[dict[str, Any]], kind: str, name: str | None = None, namespace: str | None = None):
    """The one object of `kind` (with `name` / `namespace` when given); fails when there is not exactly one."""
    matches = [
        obj
        for obj in objects
        if obj["kind"] == kind
        and (name is None or obj["metadata"]["name"] == name)
        and (namespace is None or obj["metadata"].get("namespace") == namespace)
    ]
    assert len(matches) == 1, f"expected one {kind} {name or ''} {namespace or ''}, found {len(matches)}"
    return matches[0]


def operator_container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return find(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]

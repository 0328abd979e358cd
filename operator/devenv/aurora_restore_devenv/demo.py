"""`aurora-restore-dev demo`: the local environment, demo data, and one restore watched to the end."""

import time
from pathlib import Path

import yaml
from kubernetes import client, config

from aurora_restore.api import GROUP, PLURAL, VERSION
from aurora_restore.api.phase import TERMINAL_PHASES
from . import environment

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "orders-stage.yaml"


def run_demo(directory: Path, aws_delay: float, example: Path = EXAMPLE, progress=print) -> bool:
    """Bring the environment up (unless running), seed it, apply the example and follow it to the end."""
    directory = Path(directory).resolve()
    if not environment.is_running(directory):
        environment.up(directory, aws_delay=aws_delay, progress=progress)
    environment.seed(directory, progress=progress)
    api = config.new_client_from_config(str(directory / "kubeconfig"))
    manifest = yaml.safe_load(example.read_text())
    namespace, name = manifest["metadata"]["namespace"], manifest["metadata"]["name"]
    objects = client.CustomObjectsApi(api)
    try:
        objects.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
        progress(f"deleted the previous {name} (the restored cluster stays: deletionPolicy Retain)")
        time.sleep(1)
    except client.exceptions.ApiException as error:
        if error.status != 404:
            raise
    objects.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, manifest)
    progress(f"applied {example.name}; following {namespace}/{name} (like `kubectl get ar -w`):")
    seen = None
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        status = objects.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name).get("status") or {}
        line = f"  {status.get('phase', '-'):<18} {status.get('message', '')}"
        if status and line != seen:
            progress(line)
            seen = line
        if status.get("phase") in TERMINAL_PHASES:
            break
        time.sleep(0.5)
    progress(f"\nnext: source {directory / 'env'} && kubectl get ar -A -o wide && kubectl describe ar {name}")
    progress(f"stop everything with: aurora-restore-dev down --dir {directory}")
    return status.get("phase") == "Succeeded"

"""promtool as the chart tests run it (the binary from find_promtool()), and the metric names the operator exports."""

import subprocess
from pathlib import Path
from typing import Any

import yaml

from aurora_restore.obs import metrics

# The names a family of each type exports samples under (labelled families without children yet export none).
SAMPLE_SUFFIXES = {
    "counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "summary": ("", "_count", "_sum"),
}


class Promtool:
    def __init__(self, binary: Path):
        self.binary = binary

    def run(self, *args: str) -> str:
        command = [str(self.binary), *args]
        result = subprocess.run(command, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, (
            f"`{' '.join(command)}` exited with {result.returncode}:\n{result.stdout}{result.stderr}")
        return result.stdout

    def check_rules(self, rules_file: Path) -> str:
        return self.run("check", "rules", str(rules_file))

    def test_rules(self, tests_file: Path) -> str:
        return self.run("test", "rules", str(tests_file))


def write_rules(path: Path, groups: list[dict[str, Any]]) -> Path:
    """A Prometheus rules file (what a PrometheusRule's spec holds)."""
    path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    return path


def exported_metric_names() -> set[str]:
    """Every sample name the operator's registry exports (aurora_restore_* and the client's process_*, python_*)."""
    names = set()
    for family in metrics.REGISTRY.collect():
        names.update(family.name + suffix for suffix in SAMPLE_SUFFIXES.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names


def operator_metric_families() -> set[str]:
    """The aurora_restore_* families, by the name a query uses for gauges, counters (_total) and histograms."""
    families = set()
    for family in metrics.REGISTRY.collect():
        if family.name.startswith("aurora_restore_"):
            families.add(family.name + ("_total" if family.type == "counter" else ""))
    return families

"""DescribeDBEngineVersions, which moto does not implement: the known Aurora versions and, for each, the
versions a snapshot of it can be restored to (the same rule as rulebook.engine_version_problem)."""

from __future__ import annotations

from moto.core.responses import ActionResult
from moto.rds.responses import RDSResponse

from .rulebook import KNOWN_ENGINE_VERSIONS, engine_version_problem, version_key


def engine_versions(engine: str | None, version: str | None) -> list[dict]:
    rows = []
    for name, versions in sorted(KNOWN_ENGINE_VERSIONS.items()):
        if engine and name != engine:
            continue
        ordered = sorted(versions, key=version_key)
        for current in ordered:
            if version and current != version:
                continue
            targets = [t for t in ordered if t != current and engine_version_problem(name, current, t) is None]
            rows.append(
                {
                    "Engine": name,
                    "EngineVersion": current,
                    "DBEngineDescription": f"Simulated {name}",
                    "ValidUpgradeTarget": [
                        {"Engine": name, "EngineVersion": t, "IsMajorVersionUpgrade": False, "AutoUpgrade": False}
                        for t in targets
                    ],
                }
            )
    return rows


def describe_db_engine_versions(self: RDSResponse) -> ActionResult:
    return ActionResult(
        {"DBEngineVersions": engine_versions(self.params.get("Engine"), self.params.get("EngineVersion"))}
    )


def install() -> None:
    RDSResponse.describe_db_engine_versions = describe_db_engine_versions

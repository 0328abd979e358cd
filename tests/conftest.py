"""Shared by every test tier: makes tests/ importable, so e2e tests can use the chart tests' helm wrapper
(`from chart.helm_cli import Helm`).

Under pytest-xdist (`make test` runs `-n 2 --dist loadgroup`) it also decides what each worker gets: the tests of a
module that share a module- or class-scoped fixture go to one worker together (their xdist_group), so the
fixture is built once; and the slow tiers are handed out first and the quick ones last, so that the workers run
out of tests at about the same time. A plain `pytest` keeps the collection order.
"""

import os

import pytest

# Slowest first: the chaos run is the longest single piece, the unit tests fill the gaps at the end.
TIER_ORDER = ("chaos", "e2e", "aws", "chart", "unit")
SHARED_FIXTURE_SCOPES = ("class", "module", "package")


def tier(item: pytest.Item) -> int:
    parts = item.path.relative_to(item.config.rootpath).parts
    name = parts[1] if len(parts) > 2 and parts[0] == "tests" else ""
    return TIER_ORDER.index(name) if name in TIER_ORDER else len(TIER_ORDER)


def shares_a_fixture(item: pytest.Item) -> bool:
    """Whether the item uses a fixture that lives longer than a test but not for the whole worker session."""
    definitions = getattr(item, "_fixtureinfo", None)
    if definitions is None:
        return False
    return any(fixture.scope in SHARED_FIXTURE_SCOPES
               for fixtures in definitions.name2fixturedefs.values() for fixture in fixtures)


# tryfirst: xdist's own hook names each item after its xdist_group; a mark added after that is ignored.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if os.environ.get("PYTEST_XDIST_WORKER") is None:
        return
    for item in items:
        if shares_a_fixture(item) and not item.get_closest_marker("xdist_group"):
            item.add_marker(pytest.mark.xdist_group(item.path.relative_to(item.config.rootpath).as_posix()))
    # Stable: within a tier the collection order stays, and the e2e audits (after_all_e2e) stay last of all.
    items.sort(key=lambda item: (item.get_closest_marker("after_all_e2e") is not None, tier(item)))

"""`make test` hands tests to two xdist workers; the tests of a module that share a module-scoped fixture must run on
one worker, or the fixture is built twice at once (two wheel builds in one source tree collided on CI this way).
This runs the suite's own conftest over a two-module project under `-n 2 --dist loadgroup`."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]

SHARED = '''
import os
import pytest

@pytest.fixture(scope="module")
def built():
    return os.environ["PYTEST_XDIST_WORKER"]

def test_one(built):
    assert built == os.environ["PYTEST_XDIST_WORKER"]

def test_two(built):
    assert built == os.environ["PYTEST_XDIST_WORKER"]

def test_three(built):
    assert built == os.environ["PYTEST_XDIST_WORKER"]
'''

PLAIN = "".join(f"def test_{n}():\n    pass\n\n" for n in range(6))


def test_tests_sharing_a_module_fixture_run_on_one_worker(tmp_path):
    (tmp_path / "tests" / "chart").mkdir(parents=True)
    shutil.copy(TESTS / "conftest.py", tmp_path / "tests" / "conftest.py")
    (tmp_path / "tests" / "chart" / "test_shared.py").write_text(SHARED)
    (tmp_path / "tests" / "chart" / "test_plain.py").write_text(PLAIN)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadgroup", "-v", "-p", "no:cacheprovider",
         "--rootdir", str(tmp_path), str(tmp_path / "tests")],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, stdin=subprocess.DEVNULL,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    workers = re.findall(r"\[(gw\d)\] .*PASSED tests/chart/test_shared\.py::test_\w+@tests/chart/test_shared\.py",
                         run.stdout)
    assert len(workers) == 3, run.stdout
    assert len(set(workers)) == 1, run.stdout
    plain = re.findall(r"PASSED tests/chart/test_plain\.py::test_\d+\s", run.stdout)
    assert len(plain) == 6, run.stdout

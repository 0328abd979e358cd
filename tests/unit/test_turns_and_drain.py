"""Who may take a turn: only a leading replica that is not shutting down; a drain waits for the turns in flight,
and a daemon cancelled mid-step still lets its step finish. (The Lease itself is tested on a real apiserver:
tests/e2e/test_leader_election.py.)"""

import asyncio
import threading
import time
from types import SimpleNamespace

import pytest
from pydantic import ValidationError

from aurora_restore import driver
from aurora_restore.driver import Runtime
from aurora_restore.k8s.leader_lease import LeaseTimings
from aurora_restore.k8s.resources import StatusConflict
from aurora_restore.settings import Settings


def runtime(leading=lambda: True) -> Runtime:
    return Runtime(settings=Settings(), aws=None, restores=None, events=None, api_client=None, policies=None,
                   leading=leading)


def test_a_turn_is_granted_only_while_leading_and_not_draining():
    leads = {"now": True}
    rt = runtime(leading=lambda: leads["now"])
    with rt.turn("n", "r") as granted:
        assert granted and rt.in_turn("n", "r")
    assert not rt.in_turn("n", "r")
    leads["now"] = False
    with rt.turn("n", "r") as granted:
        assert not granted and not rt.in_turn("n", "r")
    leads["now"] = True
    assert rt.drain(timeout=1) == 0
    with rt.turn("n", "r") as granted:
        assert not granted


def test_drain_waits_for_the_turn_in_flight_and_no_longer_than_its_timeout():
    rt = runtime()
    entered, release = threading.Event(), threading.Event()

    def step():
        with rt.turn("n", "r", kind="cancel") as granted:
            assert granted
            entered.set()
            release.wait(5)

    worker = threading.Thread(target=step)
    worker.start()
    entered.wait(5)
    started = time.monotonic()
    assert rt.drain(timeout=0.3) == 1  # still in flight at the timeout
    assert 0.3 <= time.monotonic() - started < 2
    threading.Timer(0.3, release.set).start()
    started = time.monotonic()
    assert rt.drain(timeout=5) == 0
    assert 0.2 <= time.monotonic() - started < 3
    worker.join()


def test_a_daemon_cancelled_mid_step_waits_for_the_step_to_finish():
    finished = []

    def slow_step():
        time.sleep(0.5)
        finished.append(True)
        return "written"

    async def scenario():
        task = asyncio.ensure_future(driver._finish_even_if_cancelled(asyncio.to_thread(slow_step)))
        await asyncio.sleep(0.1)
        task.cancel()  # what kopf does to a daemon at shutdown
        with pytest.raises(asyncio.CancelledError):
            await task
        return finished[:]

    assert asyncio.run(scenario()) == [True]  # the step had finished before the cancellation went through


def test_a_standby_daemon_waits_without_reading_or_stepping(monkeypatch):
    monkeypatch.setattr(driver, "step_once", lambda *args: pytest.fail("a standby must not step"))
    rt = runtime(leading=lambda: False)
    rt.restores = SimpleNamespace(get=lambda *args: pytest.fail("a standby must not read"))

    class Stopped:
        waits = 0

        def __bool__(self):
            return self.waits >= 3

        async def wait(self, timeout=None):
            self.waits += 1

    stopped = Stopped()
    asyncio.run(driver.drive(rt, "n", "r", stopped, __import__("logging").getLogger("t")))
    assert stopped.waits == 3


@pytest.mark.parametrize("duration, deadline, retry", [(10, 10, 2), (15, 10, 9), (5, 10, 2), (15, 10, 0)])
def test_lease_timings_follow_client_gos_rule(duration, deadline, retry):
    with pytest.raises(ValueError, match="lease duration"):
        LeaseTimings(duration, deadline, retry)


def test_settings_refuse_lease_timings_that_could_run_two_leaders(monkeypatch):
    monkeypatch.setenv("AURORA_RESTORE_LEADER_RENEW_DEADLINE_SECONDS", "20")
    with pytest.raises(ValidationError, match="AURORA_RESTORE_LEADER_"):
        Settings()


def test_the_default_shutdown_timeout_outlasts_the_longest_aws_call_with_its_retries():
    settings = Settings()
    assert settings.longest_aws_call_seconds() == 4 * (10 + 60) + 3 * 20
    assert settings.shutdown_timeout_seconds > settings.longest_aws_call_seconds()


def test_a_turn_refused_for_a_stale_read_is_repeated_at_once_from_a_fresh_read(monkeypatch):
    """A status write refused with 409 (StatusConflict) drops that turn's outcome: the next turn reads the object
    again without waiting, and without counting an error (no backoff)."""
    reads, outcomes = [], iter([StatusConflict("changed"), (5.0, 0)])

    def step(runtime, obj, logger, errors):
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    monkeypatch.setattr(driver, "step_once", step)
    rt = runtime()
    rt.restores = SimpleNamespace(get=lambda namespace, name: reads.append(name) or {
        "metadata": {"name": name, "namespace": namespace}, "status": {}})

    class Stopped:
        waits: list = []

        def __bool__(self):
            return len(self.waits) >= 1

        async def wait(self, timeout=None):
            self.waits.append(timeout)

    stopped = Stopped()
    asyncio.run(driver.drive(rt, "n", "r", stopped, __import__("logging").getLogger("t")))
    assert reads == ["r", "r"] and stopped.waits == [5.0]  # read again at once, then the step's own delay


def test_a_refused_status_write_posts_no_event_and_the_next_write_is_conditional_on_the_last():
    """_persist: the Event of a transition is posted only once its write went through; a second write in the same
    turn (a cancel writes twice) carries the resourceVersion the first one returned."""
    from aurora_restore.api.models import AuroraRestoreStatus
    from aurora_restore.api.phase import Phase

    writes, events = [], []

    def patch_status(namespace, name, status, resource_version):
        writes.append(resource_version)
        if resource_version == "stale":
            raise StatusConflict("changed")
        return {"metadata": {"resourceVersion": str(int(resource_version) + 1)}}

    rt = runtime()
    rt.restores = SimpleNamespace(patch_status=patch_status)
    rt.events = SimpleNamespace(record=lambda *args: events.append(args))
    old, new = AuroraRestoreStatus(phase=Phase.PENDING), AuroraRestoreStatus(phase=Phase.PREFLIGHT)
    logger = __import__("logging").getLogger("t")
    stale = {"metadata": {"name": "r", "namespace": "n", "resourceVersion": "stale"}}
    with pytest.raises(StatusConflict):
        driver._persist(rt, stale, old, new, logger, "Preflight", "")
    assert events == []
    current = {"metadata": {"name": "r", "namespace": "n", "resourceVersion": "7"}}
    driver._persist(rt, current, old, new, logger, "Preflight", "")
    driver._persist(rt, current, new, AuroraRestoreStatus(phase=Phase.RESTORING_CLUSTER), logger, "Restoring", "")
    assert writes == ["stale", "7", "8"] and len(events) == 2


@pytest.mark.parametrize("error, outage", [
    (__import__("urllib3").exceptions.ProtocolError("Response ended prematurely"), True),
    (__import__("urllib3").exceptions.MaxRetryError(None, "/apis", "refused"), True),
    (ConnectionResetError(), True),
    (__import__("kubernetes").client.exceptions.ApiException(status=503), True),
    (__import__("kubernetes").client.exceptions.ApiException(status=403), False),
    (KeyError("bug"), False),
])
def test_an_apiserver_outage_is_told_from_a_bug(error, outage):
    """An outage is logged as one warning line; anything else (a bug, a 403) with its traceback."""
    assert driver.is_kubernetes_outage(error) is outage


def test_a_step_and_a_cancel_of_one_restore_never_overlap():
    rt = runtime()
    with rt.turn("n", "r") as step:
        assert step
        with rt.turn("n", "r", kind="cancel") as cancel:
            assert not cancel  # the daemon's AWS call is in flight: the deletion handler waits
        with rt.turn("n", "other", kind="cancel") as elsewhere:
            assert elsewhere  # another restore is not held up
    with rt.turn("n", "r", kind="cancel") as cancel:
        assert cancel
        with rt.turn("n", "r") as step:
            assert not step  # and a daemon does not step while its restore is being cancelled


def test_the_deletion_handler_waits_while_the_daemons_step_is_in_flight():
    rt = runtime()
    obj = {"metadata": {"name": "r", "namespace": "n"}}
    with rt.turn("n", "r"):
        assert driver.cancel_once(rt, obj, __import__("logging").getLogger("t")) == \
            "waiting for the AWS call in flight to finish"

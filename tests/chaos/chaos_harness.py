"""The chaos suite's supervisor: at seeded random moments it SIGKILLs the leader and restarts it, runs a second
replica for a while, cuts the operator's connections to the apiserver, restarts the apiserver once; and, as a
Deployment would, restarts any replica that exits by itself (a leader that lost its Lease exits 1)."""

import random
import threading
import time
from dataclasses import dataclass, field

from aurora_restore_devenv.operator_process import OperatorProcess

# Marginal rates the issue asks for, per call: 20 % throttling, 5 % 5xx, 1 % applied-but-answer-lost. Rules fire
# first match first, so each later rule's own rate is divided by the chance that the earlier ones did not fire.
FAULT_SERVICES = ("rds", "kms", "sts", "secretsmanager")
THROTTLING_CODE = {"rds": "Throttling", "sts": "Throttling", "kms": "ThrottlingException",
                   "secretsmanager": "ThrottlingException"}
LOST_RATE, SERVER_ERROR_RATE, THROTTLING_RATE = 0.01, 0.05, 0.20
# A leader cut off from the apiserver stops after the renew deadline, drains and stops kopf (up to 30 s).
LOST_LEASE_WAIT = 45.0


def install_faults(simulator_client, seed: int) -> list[dict]:
    rules = []
    for index, service in enumerate(FAULT_SERVICES):
        base = seed * 10 + index * 3
        rules.append(simulator_client.add_fault(service, "*", error="InternalFailure", status=500, rate=LOST_RATE,
                                                after=True, seed=base))
        rules.append(simulator_client.add_fault(service, "*", error="InternalFailure", status=500,
                                                rate=SERVER_ERROR_RATE / (1 - LOST_RATE), seed=base + 1))
        rules.append(simulator_client.add_fault(
            service, "*", error=THROTTLING_CODE[service],
            rate=THROTTLING_RATE / ((1 - LOST_RATE) * (1 - SERVER_ERROR_RATE / (1 - LOST_RATE))), seed=base + 2))
    return rules


def fault_kind(rule: dict) -> str:
    if rule.get("after"):
        return "applied-answer-lost"
    return "5xx" if rule["status"] >= 500 else "throttling"


@dataclass
class Replica:
    process: OperatorProcess
    wanted: bool = False  # should be running (the supervisor restarts it when it is not)
    killed: bool = False  # the harness SIGKILLed it: its next restart is not an exit by itself


@dataclass
class Schedule:
    """When things happen, drawn from the seed (seconds after start)."""

    kill_gap: tuple[float, float]
    cut_gap: tuple[float, float]
    apiserver_at: float
    apiserver_down: float
    second_from: float
    second_until: float

    @classmethod
    def draw(cls, rng: random.Random) -> "Schedule":
        second_from = rng.uniform(15, 35)
        return cls(kill_gap=(1.5, 4.5), cut_gap=(8.0, 20.0), apiserver_at=rng.uniform(45, 80),
                   apiserver_down=rng.uniform(4, 8), second_from=second_from,
                   second_until=second_from + rng.uniform(40, 70))


@dataclass
class ChaosRecord:
    kills: int = 0
    kills_while_restores_ran: int = 0
    restarts: int = 0
    exits_by_themselves: list[dict] = field(default_factory=list)
    apiserver_restarts: int = 0
    apiserver_down_seconds: float = 0.0
    watch_cuts: int = 0
    connections_cut: int = 0
    second_replica: list[dict] = field(default_factory=list)
    timeline: list[tuple[float, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    leader_after_outage: dict = field(default_factory=dict)


class ChaosSupervisor(threading.Thread):
    def __init__(self, rng: random.Random, plane, cutter, primary: Replica, second: Replica, admin_leader_holder,
                 restores_running):
        super().__init__(name="chaos", daemon=True)
        self.rng = rng
        self.plane = plane
        self.cutter = cutter
        self.replicas = [primary, second]
        self.second = second
        self.leader_holder = admin_leader_holder  # () -> pod name holding the leader Lease, or None
        self.restores_running = restores_running  # () -> bool
        self.schedule = Schedule.draw(rng)
        self.record = ChaosRecord()
        self.stopping = threading.Event()
        self.started_at = time.monotonic()

    def note(self, what: str) -> None:
        self.record.timeline.append((round(time.monotonic() - self.started_at, 1), what))

    def stop(self) -> None:
        self.stopping.set()
        self.join(120)

    def run(self) -> None:
        try:
            self._loop()
        except Exception as error:  # the harness itself must never die silently: the test reports it
            self.record.errors.append(f"{type(error).__name__}: {error}")
            raise

    def _loop(self) -> None:
        s = self.schedule
        now = self._elapsed
        next_kill = now() + self.rng.uniform(*s.kill_gap)
        next_cut = now() + self.rng.uniform(*s.cut_gap)
        apiserver_done = second_started = second_stopped = False
        while not self.stopping.is_set():
            self.supervise()
            if not apiserver_done and now() >= s.apiserver_at:
                apiserver_done = self.restart_apiserver(s.apiserver_down)
                if not apiserver_done:
                    self.stopping.wait(0.5)
                continue
            if not second_started and now() >= s.second_from:
                self.second.wanted = True
                self.note(f"second replica {self.second.process.pod_name} wanted")
                self.record.second_replica.append({"started": round(now(), 1)})
                second_started = True
                continue
            if second_started and not second_stopped and now() >= s.second_until:
                code = self.second.process.stop(timeout=60)
                self.second.wanted = False
                self.record.second_replica[-1].update(stopped=round(now(), 1), exit_code=code)
                self.note(f"second replica stopped (SIGTERM): exit {code}")
                second_stopped = True
                continue
            if now() >= next_cut:
                cut = self.cutter.cut_all()
                self.record.watch_cuts += 1
                self.record.connections_cut += cut
                self.note(f"cut {cut} connection(s)")
                next_cut = now() + self.rng.uniform(*s.cut_gap)
                continue
            if now() >= next_kill:
                if self.kill_leader():
                    next_kill = now() + self.rng.uniform(*s.kill_gap)
                else:
                    next_kill = now() + 0.5
                continue
            self.stopping.wait(0.2)
        self.note("chaos over")

    def _elapsed(self) -> float:
        return time.monotonic() - self.started_at

    @property
    def done_with_schedule(self) -> bool:
        return (self.record.apiserver_restarts >= 1 and len(self.record.second_replica) >= 1
                and "stopped" in self.record.second_replica[-1])

    def supervise(self) -> None:
        """Start every wanted replica that is not running (restart after a kill or an exit of its own)."""
        for replica in self.replicas:
            if not replica.wanted or self.stopping.is_set():
                continue
            process = replica.process
            if process.process is not None and process.returncode is None:
                continue
            if process.process is not None and not replica.killed:
                self.record.exits_by_themselves.append(
                    {"at": round(self._elapsed(), 1), "replica": process.pod_name, "exit_code": process.returncode})
                self.note(f"{process.pod_name} exited by itself with {process.returncode}")
            restarting = process.process is not None
            try:
                process.start()
            except RuntimeError as error:
                self.note(f"{process.pod_name} did not start: {error}")
                replica.killed = False
                continue
            replica.killed = False
            if restarting:
                self.record.restarts += 1
            self.note(f"{process.pod_name} started (pid {process.pid})")

    def running(self) -> list[Replica]:
        return [r for r in self.replicas if r.process.process is not None and r.process.returncode is None]

    def kill_leader(self) -> bool:
        running = self.running()
        leaders = [r for r in running if (r.process.health() or {}).get("leader")]
        if not leaders:
            holder = self.leader_holder()
            leaders = [r for r in running if r.process.pod_name == holder]
        if len(leaders) != 1:
            return False
        leader = leaders[0]
        leader.killed = True
        leader.process.kill()
        self.record.kills += 1
        if self.restores_running():
            self.record.kills_while_restores_ran += 1
        self.note(f"SIGKILL {leader.process.pod_name}")
        self.supervise()
        return True

    def restart_apiserver(self, down: float) -> bool:
        """Restart the apiserver while a replica leads (False: none does yet, try again soon); then wait, without
        killing anyone, until that leader exits by itself (it cannot renew its Lease), at most LOST_LEASE_WAIT."""
        leaders = [r for r in self.running() if (r.process.health() or {}).get("leader")]
        if len(leaders) != 1:
            return False
        leader = leaders[0]
        self.note(f"apiserver stopping for {down:.1f}s (leader {leader.process.pod_name})")
        began = time.monotonic()
        self.plane.restart_apiserver(down_seconds=down)
        self.record.apiserver_restarts += 1
        self.record.apiserver_down_seconds = round(time.monotonic() - began, 1)
        self.note(f"apiserver back after {self.record.apiserver_down_seconds}s")
        deadline = time.monotonic() + LOST_LEASE_WAIT
        while leader.process.returncode is None and time.monotonic() < deadline and not self.stopping.is_set():
            time.sleep(0.2)
        self.record.leader_after_outage = {"replica": leader.process.pod_name, "exit_code": leader.process.returncode,
                                           "exited_after": round(time.monotonic() - began, 1)}
        self.note(f"the leader at the outage: exit code {leader.process.returncode}")
        return True

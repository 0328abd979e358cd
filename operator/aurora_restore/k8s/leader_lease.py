"""Leader election on one coordination.k8s.io Lease, so that of N operator replicas exactly one acts.

kopf has no leader election (its peering pauses every peer of equal priority and fences nothing), so the
operator process elects itself here, in the manner of client-go's leaderelection:

- A candidate takes the Lease when it is free (no holder) or when its record has not changed for
  leaseDurationSeconds *as observed locally*: expiry is judged by this process's monotonic clock from the moment
  it last saw the record change, never by comparing the record's timestamps with a clock that may be skewed.
- The leader renews every retry period. It counts as leading only while its last successful renewal is younger
  than the renew deadline (shorter than the lease duration), so it stops taking steps before any standby may
  take over.
- Every write replaces the Lease that was read (its resourceVersion), so two candidates never both win.
- Releasing clears the holder and sets a one-second duration, so a standby takes over at once after a
  graceful shutdown instead of waiting out the lease.
"""

import logging
import math
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from kubernetes import client
from kubernetes.client.exceptions import ApiException

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LeaseTimings:
    """client-go's rule: lease duration > renew deadline > retry period (with room for a slow renewal)."""

    lease_duration: float
    renew_deadline: float
    retry_period: float

    def __post_init__(self):
        if not self.lease_duration > self.renew_deadline > self.retry_period * 1.2 > 0:
            raise ValueError(
                f"leader election needs lease duration ({self.lease_duration:g}s) > renew deadline "
                f"({self.renew_deadline:g}s) > 1.2 x retry period ({self.retry_period:g}s)"
            )


class LeaderElector:
    """One candidate's view of the leader Lease. `try_acquire_or_renew` is the only call that writes."""

    def __init__(self, api_client: client.ApiClient, namespace: str, name: str, identity: str,
                 timings: LeaseTimings, clock=time.monotonic):
        self.api = client.CoordinationV1Api(api_client)
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.timings = timings
        self._clock = clock
        self._lock = threading.Lock()
        self._observed_record: tuple | None = None  # (holder, renewTime, transitions) last seen
        self._observed_at = 0.0  # when this process saw that record change
        self._renewed_at: float | None = None  # when this process last wrote the Lease as its holder
        self.holder: str | None = None  # who held it at the last look

    def is_leading(self) -> bool:
        """True while this process's last renewal is younger than the renew deadline."""
        with self._lock:
            return self._renewed_at is not None and self._clock() - self._renewed_at < self.timings.renew_deadline

    def lease_left(self) -> float:
        """Seconds until a standby may take over from this process's last renewal (0 when it holds nothing)."""
        with self._lock:
            if self._renewed_at is None:
                return 0.0
            return max(0.0, self._renewed_at + self.timings.lease_duration - self._clock())

    def try_acquire_or_renew(self) -> bool:
        """Take or renew the Lease if this process may; True when it holds it now. Raises only on API errors
        other than a lost race (409), which counts as not acquired."""
        now = datetime.now(timezone.utc)
        started = self._clock()
        try:
            lease = self.api.read_namespaced_lease(self.name, self.namespace)
        except ApiException as error:
            if error.status != 404:
                raise
            return self._create(now, started)
        spec = lease.spec or client.V1LeaseSpec()
        record = (spec.holder_identity, spec.renew_time, spec.lease_transitions)
        with self._lock:
            if record != self._observed_record:
                self._observed_record, self._observed_at = record, started
            self.holder = spec.holder_identity
            expired = started - self._observed_at >= (spec.lease_duration_seconds or self.timings.lease_duration)
        if spec.holder_identity and spec.holder_identity != self.identity and not expired:
            return False
        if spec.holder_identity != self.identity:
            spec.acquire_time = now
            spec.lease_transitions = (spec.lease_transitions or 0) + 1
        spec.holder_identity = self.identity
        spec.renew_time = now
        spec.lease_duration_seconds = math.ceil(self.timings.lease_duration)
        lease.spec = spec
        # The replace carries the resourceVersion that was read: of two candidates, one gets 409.
        return self._write(lambda: self.api.replace_namespaced_lease(self.name, self.namespace, lease), started)

    def release(self) -> None:
        """Give the Lease up if this process holds it (a standby then takes over at its next try)."""
        with self._lock:
            self._renewed_at = None
        try:
            lease = self.api.read_namespaced_lease(self.name, self.namespace)
            if lease.spec.holder_identity != self.identity:
                return
            lease.spec.holder_identity = None
            lease.spec.lease_duration_seconds = 1
            lease.spec.renew_time = datetime.now(timezone.utc)
            self.api.replace_namespaced_lease(self.name, self.namespace, lease)
            log.info("released the leader Lease %s/%s", self.namespace, self.name)
        except ApiException as error:
            if error.status not in (404, 409):
                raise

    def _create(self, now: datetime, started: float) -> bool:
        body = client.V1Lease(
            metadata=client.V1ObjectMeta(name=self.name, labels={"app.kubernetes.io/managed-by": "aurora-restore-operator"}),
            spec=client.V1LeaseSpec(holder_identity=self.identity, acquire_time=now, renew_time=now,
                                    lease_duration_seconds=math.ceil(self.timings.lease_duration), lease_transitions=0),
        )
        return self._write(lambda: self.api.create_namespaced_lease(self.namespace, body), started)

    def _write(self, write, started: float) -> bool:
        """Take the Lease with `write`: False when another candidate wrote first (409), else this process leads,
        counted from when the read began, not when the write returned (a slow write shortens the term)."""
        try:
            write()
        except ApiException as error:
            if error.status == 409:
                return False
            raise
        with self._lock:
            self._renewed_at = started
            self.holder = self.identity
        return True

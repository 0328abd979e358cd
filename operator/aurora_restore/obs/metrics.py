"""Prometheus metrics: how many restores end how, how long they take, what slows them down.

Labels carry phases, outcomes and CamelCase reasons only — never names, identifiers or anything secret — so the
series stay few and safe to export.
"""

from prometheus_client import Counter, Histogram, start_http_server

TRANSITIONS = Counter(
    "aurora_restore_phase_transitions_total", "Restores entering a phase.", ["phase"]
)
FINISHED = Counter(
    "aurora_restore_finished_total", "Restores that ended, by outcome and reason.", ["outcome", "reason"]
)
DURATION = Histogram(
    "aurora_restore_duration_seconds",
    "Time from acceptance to the end of a restore.",
    ["outcome"],
    buckets=(60, 300, 600, 1200, 1800, 3600, 7200, 14400, 21600, 43200),
)
RETRIES = Counter(
    "aurora_restore_retries_total", "Steps retried after a retryable error (throttling, 5xx, busy).", ["reason"]
)


def serve(port: int) -> None:
    """Serve /metrics on `port` in a background thread."""
    start_http_server(port)


def record_transition(phase: str) -> None:
    TRANSITIONS.labels(phase=phase).inc()


def record_finished(outcome: str, reason: str, seconds: float | None) -> None:
    FINISHED.labels(outcome=outcome, reason=reason).inc()
    if seconds is not None:
        DURATION.labels(outcome=outcome).observe(seconds)


def record_retry(reason: str) -> None:
    RETRIES.labels(reason=reason).inc()

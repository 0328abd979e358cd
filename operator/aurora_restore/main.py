"""kopf registration only: each handler is a thin entry point into driver.py.

The process runs them with `aurora-restore run [--namespace NS | --all-namespaces]` (run.py), which starts kopf
only on the elected leader. `kopf run --standalone -m aurora_restore.main` still works for one replica, without
leader election or the graceful drain.
"""

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

import kopf
from kubernetes import client, config

from .api import GROUP, PLURAL, VERSION
from .api.models import AuroraRestoreStatus
from .api.schedule import SCHEDULE_PLURAL
from .driver import Runtime, cancel_once, drive, is_finished_drill, observe_finished_drill, ttl_seconds
from .errors import RetryableError, TerminalError
from .k8s.api_client import TimedApiClient
from .machine import has_work
from .obs import metrics
from .obs.logs import quiet_wire_loggers
from .scheduling.controller import run_schedule
from .settings import Settings

RUNTIME_KEY = "runtime"
CONTROL_KEY = "process"  # run.ProcessControl, when the process runs under run.py


def load_kubernetes_config(pool_size: int, request_timeout: float, replica: str) -> client.ApiClient:
    """The operator's Kubernetes client; its User-Agent names the replica, so the apiserver's audit log tells
    which one acted."""
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    configuration = client.Configuration.get_default_copy()
    configuration.connection_pool_maxsize = pool_size  # one connection per worker thread
    api_client = TimedApiClient(configuration, request_timeout)
    api_client.user_agent = f"aurora-restore-operator pod/{replica}"
    return api_client


@kopf.on.startup(id="configure")
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, logger: logging.Logger, **_) -> None:
    """Keep kopf's bookkeeping in annotations, post only our own events, build the shared runtime once."""
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=GROUP)
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    settings.posting.enabled = False
    settings.watching.server_timeout = 60
    quiet_wire_loggers()  # `kopf run --verbose` set the root logger to DEBUG (obs/logs.py)
    operator_settings = Settings()
    if operator_settings.watch_label_selector:  # a shard: the apiserver sends it only its own objects
        for plural in (PLURAL, SCHEDULE_PLURAL):
            settings.watching.label_selectors[GROUP, plural] = operator_settings.watch_label_selector
    # kopf's own requests (patches, finalizers, peering) time out like the operator's; watches end by server_timeout.
    settings.networking.request_timeout = operator_settings.kubernetes_timeout_seconds
    settings.networking.connect_timeout = min(10.0, operator_settings.kubernetes_timeout_seconds)
    # Steps run in the loop's default executor (asyncio.to_thread); size it by setting, not by the node's CPUs.
    asyncio.get_running_loop().set_default_executor(
        ThreadPoolExecutor(max_workers=operator_settings.worker_threads, thread_name_prefix="restore-step")
    )
    if operator_settings.metrics_port:
        metrics.serve(operator_settings.metrics_port)
    control = memo.get(CONTROL_KEY)
    runtime = Runtime.create(
        operator_settings,
        load_kubernetes_config(operator_settings.worker_threads, operator_settings.kubernetes_timeout_seconds,
                               operator_settings.pod_name),
        leading=control.leading if control else None,
        accepting=control.accepting if control else None,
    )
    memo[RUNTIME_KEY] = runtime
    if control:
        control.runtime = runtime  # run.py drains it on shutdown
    if operator_settings.events_queue_url:  # RDS events wake the restores they concern (docs/scale.md)
        runtime.listen_for_rds_events()
    if not operator_settings.db_tls_verify:
        logger.warning("AURORA_RESTORE_DB_TLS_VERIFY is false: TLS to the restored databases is encrypted but "
                       "unverified: a server impersonating a database (a man in the middle) would go unnoticed")
    logger.info("aurora-restore-operator started")


def _is_active(status: dict, body: kopf.Body, **_) -> bool:
    """The restore still needs its daemon (machine.has_work; a ttlSecondsAfterFinished keeps it until then)."""
    return has_work(AuroraRestoreStatus.model_validate(status or {}), ttl_seconds(dict(body)))


# cancellation_backoff: when the restore ends, the daemon's own last write turns the filter false; give it time
# to return by itself (after posting its Event and releasing the Lease) instead of being cancelled mid-way.
@kopf.daemon(
    GROUP, VERSION, PLURAL, id="restore", when=_is_active, cancellation_backoff=10.0, cancellation_timeout=5.0
)
async def restore(name: str, namespace: str, stopped: kopf.DaemonStopped, memo: kopf.Memo, logger, **_) -> None:
    """Drive one AuroraRestore through the phase machine until it succeeds or fails."""
    await drive(memo[RUNTIME_KEY], namespace, name, stopped, logger)


# kopf stops a resource's daemons once it is being deleted, so cancelling runs here, behind the finalizer.
@kopf.on.delete(GROUP, VERSION, PLURAL, id="cancel-or-delete")
def cancel_or_delete(body: kopf.Body, memo: kopf.Memo, logger, **_) -> None:
    """Cancel an unfinished restore (remove what it made), or apply deletionPolicy to a finished one."""
    runtime = memo[RUNTIME_KEY]
    try:
        waiting = cancel_once(runtime, dict(body), logger)
    except RetryableError as error:
        raise kopf.TemporaryError(error.message, delay=runtime.settings.poll_interval_seconds) from None
    except TerminalError as error:
        raise kopf.TemporaryError(error.message, delay=runtime.settings.retry_backoff_max_seconds) from None
    if waiting:
        logger.info("%s", waiting)
        raise kopf.TemporaryError(waiting, delay=runtime.settings.poll_interval_seconds)


def _is_finished_drill(body: kopf.Body, **_) -> bool:
    return is_finished_drill(dict(body))


# The watch events of finished drills (kopf logs a line per call), the listing when this replica starts leading
# included; no handler progress, no writes.
@kopf.on.event(GROUP, VERSION, PLURAL, id="drill-metrics", when=_is_finished_drill)
async def drill_metrics(body: kopf.Body, **_) -> None:
    """Show a finished drill's gauges again after a restart or failover (finished restores have no daemon)."""
    observe_finished_drill(dict(body))


# One daemon per AuroraRestoreSchedule: it wakes at each due time (at most every schedule poll interval). On
# shutdown it returns by itself once its turn in flight is written (cancellation_backoff), never cancelled mid-way.
@kopf.daemon(GROUP, VERSION, SCHEDULE_PLURAL, id="schedule", cancellation_backoff=5.0, cancellation_timeout=5.0)
async def schedule(name: str, namespace: str, stopped: kopf.DaemonStopped, memo: kopf.Memo, logger, **_) -> None:
    """Create the schedule's runs (AuroraRestores) when due; prune old ones (scheduling/controller.py)."""
    await run_schedule(memo[RUNTIME_KEY], namespace, name, stopped, logger)


# The runs go with the schedule through the garbage collector (their ownerReferences), each behind its finalizer.
@kopf.on.delete(GROUP, VERSION, SCHEDULE_PLURAL, id="forget-schedule")
def forget_schedule(name: str, namespace: str, **_) -> None:
    """Drop a deleted schedule's metrics series."""
    metrics.forget_schedule(namespace, name)

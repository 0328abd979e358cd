"""kopf registration only: each handler is a thin entry point into driver.py.

Run with: kopf run --standalone -m aurora_restore.main [--namespace NS | --all-namespaces]
"""

import logging

import kopf
from kubernetes import client, config

from .api import GROUP, PLURAL, VERSION
from .driver import Runtime, delete_restored, drive
from .errors import RetryableError, TerminalError
from .machine import has_work
from .obs import metrics
from .settings import Settings

RUNTIME_KEY = "runtime"


def _load_kubernetes_config() -> client.ApiClient:
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    return client.ApiClient()


@kopf.on.startup(id="configure")
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, logger: logging.Logger, **_) -> None:
    """Keep kopf's bookkeeping in annotations, post only our own events, build the shared runtime once."""
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=GROUP)
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    settings.posting.enabled = False
    settings.watching.server_timeout = 60
    operator_settings = Settings()
    if operator_settings.metrics_port:
        metrics.serve(operator_settings.metrics_port)
    memo[RUNTIME_KEY] = Runtime.create(operator_settings, _load_kubernetes_config())
    logger.info("aurora-restore-operator started")


def _is_active(status: dict, spec: dict, **_) -> bool:
    return has_work(status, spec)


@kopf.daemon(GROUP, VERSION, PLURAL, id="restore", when=_is_active, cancellation_timeout=5.0)
async def restore(name: str, namespace: str, stopped: kopf.DaemonStopped, memo: kopf.Memo, logger, **_) -> None:
    """Drive one AuroraRestore through the phase machine until it succeeds or fails."""
    await drive(memo[RUNTIME_KEY], namespace, name, stopped, logger)


def _deletes_cluster(spec: dict, **_) -> bool:
    return spec.get("deletionPolicy") == "Delete"


@kopf.on.delete(GROUP, VERSION, PLURAL, id="delete-restored-cluster", when=_deletes_cluster)
def delete_restored_cluster(body: kopf.Body, memo: kopf.Memo, logger, **_) -> None:
    """deletionPolicy Delete: remove the restored cluster and its instances before the resource goes away."""
    runtime = memo[RUNTIME_KEY]
    try:
        waiting = delete_restored(runtime, dict(body))
    except RetryableError as error:
        raise kopf.TemporaryError(error.message, delay=runtime.settings.poll_interval_seconds) from None
    except TerminalError as error:
        raise kopf.PermanentError(error.message) from None
    if waiting:
        logger.info("%s", waiting)
        raise kopf.TemporaryError(waiting, delay=runtime.settings.poll_interval_seconds)

"""One place where the simulator reaches into moto's RDS request handling.

moto's `RDSResponse` has one method per action (`describe_db_clusters`, ...), called with
the parsed request parameters in `self.params`. `RdsHooks` collects, per action, functions to
run before that method (to rewrite parameters or refuse the call with an AWS error) and
functions to run around it (to change the result), then replaces the methods on the class.

This patches moto process-wide: it is meant for the simulator's own server process. moto is
pinned to an exact version because of it.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from moto.core.responses import ActionResult
from moto.rds.models import RDSBackend
from moto.rds.responses import RDSResponse


class RdsRequest:
    """The view of one RDS call that hooks get: parameters, region, account, backend."""

    def __init__(self, response: RDSResponse, action: str) -> None:
        self._response = response
        #: moto's method name for the action, e.g. "copy_db_cluster_snapshot".
        self.action = action

    @property
    def params(self) -> Any:
        """The request parameters; PascalCase keys, writable (moto reads them afterwards)."""
        return self._response.params

    @property
    def region(self) -> str:
        return self._response.region

    @property
    def account(self) -> str:
        return self._response.current_account

    @property
    def backend(self) -> RDSBackend:
        return self._response.backend


BeforeHook = Callable[[RdsRequest], None]
Proceed = Callable[[], ActionResult]
AroundHook = Callable[[RdsRequest, Proceed], ActionResult]


class RdsHooks:
    """Hooks per action, installed onto `RDSResponse` by `install()`."""

    def __init__(self) -> None:
        self._before: dict[str, list[BeforeHook]] = defaultdict(list)
        self._around: dict[str, list[AroundHook]] = defaultdict(list)

    def before(self, action: str, hook: BeforeHook) -> None:
        """Run `hook` before moto handles `action`; it may edit params or raise an AWS error."""
        self._require_action(action)
        self._before[action].append(hook)

    def around(self, action: str, hook: AroundHook) -> None:
        """Let `hook` call moto (through `proceed`) and return its own result."""
        self._require_action(action)
        self._around[action].append(hook)

    def install(self) -> None:
        """Replace the hooked methods of `RDSResponse`; re-installing starts from moto's."""
        for action in set(self._before) | set(self._around):
            original = _ORIGINAL_METHODS.setdefault(action, getattr(RDSResponse, action))
            setattr(RDSResponse, action, self._hooked(action, original))

    def _hooked(self, action: str, original: Callable[[RDSResponse], ActionResult]):
        befores = list(self._before[action])
        arounds = list(self._around[action])

        @functools.wraps(original)
        def hooked_action(response: RDSResponse) -> ActionResult:
            request = RdsRequest(response, action)
            for hook in befores:
                hook(request)

            def call(index: int) -> ActionResult:
                if index == len(arounds):
                    return original(response)
                return arounds[index](request, lambda: call(index + 1))

            return call(0)

        return hooked_action

    @staticmethod
    def _require_action(action: str) -> None:
        if not callable(getattr(RDSResponse, action, None)):
            raise ValueError(f"moto's RDSResponse has no action method {action!r}")


# moto's own methods, kept so that a second install() does not wrap the wrappers.
_ORIGINAL_METHODS: dict[str, Callable[[RDSResponse], ActionResult]] = {}

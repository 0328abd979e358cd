"""The operator's own error types. Domain code raises these; only the driver turns them into outcomes.

Messages must never contain secret values: they end up in status, events and logs.
"""


class RestoreError(Exception):
    """Base of the operator's errors; `reason` is a CamelCase word for status.failure.reason and events."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message


class RetryableError(RestoreError):
    """Something that may pass by itself (throttling, a 5xx, a resource in a transitional state): retry later."""


class NotLeading(Exception):
    """This replica lost the leader Lease: it must not call AWS any more (raised before the call is sent)."""


class TerminalError(RestoreError):
    """Retrying cannot help (bad input, missing resource, refused request): the restore fails with this message."""

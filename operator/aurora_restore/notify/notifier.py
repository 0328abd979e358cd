"""Delivering a restore's notifications: the outbox (outbox.py) driven against SNS and webhooks.

Runs inside the restore's turns (machine.py): before each step while the restore runs, from Publishing for the
Succeeded notification, and as aftercare while the phase is terminal. A notification never fails or blocks the
restore: an attempt that fails is recorded in status.notifications and tried again later; one that runs out of
attempts ends Failed with a Warning Event NotificationFailed. Each destination must be allowed, when it is sent
to, by the policy that allows the restore (steps/policy.py notification_refusal; the operator's default topic
needs none). Any error of an attempt is a failed attempt, never an error of the turn, except NotLeading: a replica
that lost the leader Lease sends nothing (the webhook POST is fenced here, SNS by the AWS clients).
"""

import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from ..api.models import AuroraRestoreStatus, NotificationStatus
from ..api.phase import Phase
from ..aws.arn import Arn
from ..errors import NotLeading, RestoreError
from . import outbox
from .payload import build_payload, notification_id, slack_body, subject
from .url_guard import HostUnresolved, Resolver, UnsafeUrl, check_url, host_of, resolve
from .webhook import WebhookFailed, post_json

if TYPE_CHECKING:
    from ..steps.context import RestoreContext

NOTIFICATION_FAILED = "NotificationFailed"
SIGNATURE_HEADER = "X-Aurora-Restore-Signature"


@dataclass(frozen=True)
class NotificationSettings:
    """The operator's notification settings (settings.py AURORA_RESTORE_NOTIFICATION_*)."""

    default_topic: str | None = None
    allow_http: bool = False
    max_attempts: int = 5
    retry_base_seconds: float = 10.0
    timeout_seconds: float = 10.0
    signing_key: str | None = field(default=None, repr=False)  # a secret: never in a repr

    @classmethod
    def of(cls, settings) -> "NotificationSettings":
        """From the operator's Settings."""
        return cls(default_topic=settings.notification_sns_topic_arn, allow_http=settings.notification_allow_http,
                   max_attempts=settings.notification_max_attempts,
                   retry_base_seconds=settings.notification_retry_base_seconds,
                   timeout_seconds=settings.notification_timeout_seconds,
                   signing_key=settings.notification_signing_key)


class Notifier:
    """Queues and delivers the notifications of one restore's turn. `events(obj, type, reason, message)`
    posts the Warning Event; `post` and `resolver` are the network (tests pass fakes); `leading`: whether this
    replica holds the leader Lease (the runtime's), asked right before each POST."""

    def __init__(self, settings: NotificationSettings, events: Callable[[dict, str, str, str], None] | None = None,
                 post: Callable[..., int] = post_json, resolver: Resolver = resolve,
                 leading: Callable[[], bool] = lambda: True):
        self.settings = settings
        self.events = events
        self.post = post
        self.resolver = resolver
        self.leading = leading

    def queue(self, ctx: "RestoreContext", phase: Phase,
              entries: list[NotificationStatus] | None = None) -> list[NotificationStatus]:
        """`entries` (default: the status's) with the notifications reaching `phase` owes queued."""
        entries = list(ctx.status.notifications if entries is None else entries)
        if not outbox.reports(ctx.spec, phase):
            return entries
        return outbox.queue(entries, outbox.channels(ctx.spec, self.settings.default_topic), phase)

    def deliver_due(self, ctx: "RestoreContext", entries: list[NotificationStatus] | None = None,
                    endpoint: dict[str, Any] | None = None,
                    status: AuroraRestoreStatus | None = None) -> list[NotificationStatus]:
        """Attempt every Pending entry that is due (payloads built from `status`, default ctx.status); returns
        the entries after those attempts."""
        entries = list(ctx.status.notifications if entries is None else entries)
        return [self.attempt(ctx, entry, endpoint, status)
                if outbox.is_due(entry, ctx.now, self.settings.retry_base_seconds) else entry for entry in entries]

    def next_due_in(self, entries: list[NotificationStatus], ctx: "RestoreContext") -> float | None:
        return outbox.next_due_in(entries, ctx.now, self.settings.retry_base_seconds)

    def attempt(self, ctx: "RestoreContext", entry: NotificationStatus, endpoint: dict[str, Any] | None = None,
                status: AuroraRestoreStatus | None = None) -> NotificationStatus:
        """One delivery attempt of `entry`; the entry as it is after it. The payload is built from `status`
        (default: ctx.status). Raises only NotLeading: any other error is a failed attempt, tried again later,
        named by its type only (its message could quote the webhook URL)."""
        try:
            payload = build_payload(ctx.name, ctx.namespace, ctx.uid, ctx.spec, status or ctx.status, entry.phase,
                                    ctx.now, endpoint)
            if entry.channel == "sns":
                message_id = self._publish(ctx, payload)
            else:
                message_id = self._post(ctx, payload)
        except NotLeading:
            raise
        except Undeliverable as error:
            return self._failed(ctx, entry, outbox.attempt_failed(entry, ctx.now, error.message,
                                                                   self.settings.max_attempts, error.final))
        except Exception as error:  # a bug or an unexpected failure must not block the restore
            message = f"the {entry.channel} notification failed unexpectedly ({type(error).__name__})"
            return self._failed(ctx, entry, outbox.attempt_failed(entry, ctx.now, message,
                                                                   self.settings.max_attempts))
        return outbox.delivered(entry, ctx.now, message_id)

    def _failed(self, ctx: "RestoreContext", before: NotificationStatus,
                after: NotificationStatus) -> NotificationStatus:
        if after.state == "Failed" and before.state != "Failed" and self.events and ctx.resource is not None:
            self.events(ctx.resource, "Warning", NOTIFICATION_FAILED,
                        f"the {after.channel} notification of phase {after.phase} was not delivered after "
                        f"{after.attempts} attempt(s): {after.error}")
        return after

    def _publish(self, ctx: "RestoreContext", payload: dict[str, Any]) -> str | None:
        """Publish to the topic with the target side's identity, in the topic's region."""
        topic = outbox.sns_topic(ctx.spec, self.settings.default_topic)
        if ctx.spec.notification.sns_topic_arn:  # the operator's default topic needs no policy
            refusal = destination_refusal(ctx, topic=topic)
            if refusal:
                raise Undeliverable(refusal, final=True)
        request: dict[str, Any] = {
            "TopicArn": topic, "Message": json.dumps(payload, sort_keys=True), "Subject": subject(payload),
            "MessageAttributes": {"phase": {"DataType": "String", "StringValue": payload["phase"]}},
        }
        if topic.endswith(".fifo"):  # FIFO topics de-duplicate on the id for five minutes
            request["MessageGroupId"] = ctx.uid
            request["MessageDeduplicationId"] = payload["id"]
        region = Arn.parse(topic).region
        try:
            answer = ctx.target.in_region(region).sns.publish(**request)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "Unknown")
            raise Undeliverable(f"SNS Publish to {topic} failed: {code}") from None
        except BotoCoreError as error:
            raise Undeliverable(f"SNS Publish to {topic} failed: {type(error).__name__}") from None
        return answer.get("MessageId")

    def _post(self, ctx: "RestoreContext", payload: dict[str, Any]) -> None:
        """POST to the URL in the Secret; every error names the Secret and key, never the URL."""
        ref = ctx.spec.notification.webhook_secret_ref
        where = f"the webhook in Secret {ctx.namespace}/{ref.name} key {ref.key}"
        try:
            url = ctx.secrets.read_key(ref.name, ref.key, "spec.notification.webhookSecretRef")
        except RestoreError as error:
            raise Undeliverable(error.message) from None
        except Exception as error:  # the Kubernetes API failing: try again later
            raise Undeliverable(f"{where} could not be read ({type(error).__name__})") from None
        if url is None:
            raise Undeliverable(f"Secret {ctx.namespace}/{ref.name} (spec.notification.webhookSecretRef) does not "
                                f"exist")
        refusal = destination_refusal(ctx, host=host_of(url) or "")
        if refusal:
            raise Undeliverable(f"{where} refused: {refusal}", final=True)
        try:
            target = check_url(url, self.settings.allow_http, self.resolver)
        except HostUnresolved as error:  # DNS may answer next time
            raise Undeliverable(f"{where} failed: {error}") from None
        except UnsafeUrl as error:
            raise Undeliverable(f"{where} refused: {error}", final=True) from None
        body_json = slack_body(payload) if ctx.spec.notification.webhook_format == "Slack" else payload
        body = json.dumps(body_json, sort_keys=True).encode()
        headers = {"X-Aurora-Restore-Notification-Id": notification_id(ctx.uid, payload["phase"])}
        if self.settings.signing_key:
            digest = hmac.new(self.settings.signing_key.encode(), body, hashlib.sha256).hexdigest()
            headers[SIGNATURE_HEADER] = f"sha256={digest}"
        if not self.leading():  # the SNS clients are fenced; this POST is fenced here
            raise NotLeading()
        try:
            self.post(target, body, headers, self.settings.timeout_seconds)
        except WebhookFailed as error:
            raise Undeliverable(f"{where} failed: {error}") from None
        return None


class Undeliverable(Exception):
    """An attempt failed; `final`: trying again cannot help (a refused destination)."""

    def __init__(self, message: str, final: bool = False):
        super().__init__(message)
        self.message = message
        self.final = final


def destination_refusal(ctx: "RestoreContext", topic: str | None = None, host: str | None = None) -> str | None:
    """Why the policy allowing the restore does not allow this destination, or None (steps/policy.py decides).
    The policies not being readable now (the Kubernetes API failing) is a failed attempt, tried again later."""
    from ..steps.policy import notification_refusal

    try:
        return notification_refusal(ctx, topic=topic, host=host)
    except RestoreError as error:
        raise Undeliverable(f"the AuroraRestorePolicies could not be read: {error.message}") from None

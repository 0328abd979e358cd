"""Notifications through the phase machine: payload, Slack body, outbox and backoff, delivery never failing the
restore (steps/notify.py, notify/)."""

import json
from datetime import timedelta

import pytest

from aurora_restore.api.models import AuroraRestoreStatus, NotificationStatus
from aurora_restore.api.phase import Phase
from aurora_restore.aws.iam_policy import actions_of, operator_policy
from aurora_restore.errors import NotLeading, RetryableError
from aurora_restore.machine import apply_outcome, has_work, run_aftercare, ttl_expiry
from aurora_restore.notify import outbox
from aurora_restore.notify.notifier import NotificationSettings, Notifier
from aurora_restore.notify.payload import PAYLOAD_VERSION, slack_body, subject
from aurora_restore.notify.url_guard import HostUnresolved
from aurora_restore.notify.webhook import WebhookFailed
from aurora_restore.steps.notify import unsendable_notifications

from .conftest import PERMISSIVE_POLICY, START, UID

TOPIC = "arn:aws:sns:eu-west-1:123456789012:restores"
HOOK_URL = "https://hooks.example.com/services/T0/B0/s3cr3t-token"
ALLOWING = {**PERMISSIVE_POLICY, "snsTopics": ["arn:aws:sns:*:123456789012:*"], "webhookHosts": ["*.example.com"]}


class FakeSns:
    def __init__(self):
        self.published: list[dict] = []

    def publish(self, **request):
        self.published.append(request)
        return {"MessageId": f"m-{len(self.published)}"}


class FakeWebhook:
    """Records POSTs; `failures` answers that many with HTTP 500 first."""

    def __init__(self, failures: int = 0):
        self.posts: list[tuple] = []
        self.failures = failures

    def __call__(self, target, body, headers, timeout):
        self.posts.append((target, json.loads(body), headers))
        if len(self.posts) <= self.failures:
            raise WebhookFailed("it answered HTTP 500")
        return 200


class Events:
    def __init__(self):
        self.recorded: list[tuple] = []

    def __call__(self, obj, event_type, reason, message):
        self.recorded.append((event_type, reason, message))


def resolve_public(host, port):
    return ["203.0.113.10"]


@pytest.fixture
def notifying(restore):
    """A RestoreRun whose contexts carry a Notifier with fake SNS and webhook."""

    def build(notification: dict, webhook: FakeWebhook | None = None, settings: NotificationSettings | None = None,
              policies: dict | None = None, **changes):
        run = restore({"notification": notification, **changes}, policies=policies or {"allowing": ALLOWING})
        run.secrets.add("hook", {"url": HOOK_URL})
        run.sns, run.webhook, run.events = FakeSns(), webhook or FakeWebhook(), Events()
        notifier = Notifier(settings or NotificationSettings(retry_base_seconds=10), run.events, run.webhook,
                            resolve_public)
        original = run.context

        def context(status=None):
            ctx = original(status)
            ctx.notifier = notifier
            ctx.target.sns = run.sns
            return ctx

        run.context = context
        return run

    return build


def aftercare(run):
    """One driver turn of a finished restore; None when it owes nothing."""
    outcome = run_aftercare(run.context())
    if outcome is not None:
        run.status = apply_outcome(run.status, outcome, run.now, 1, 20)
    return outcome


def test_a_dry_run_publishes_the_planned_payload_to_sns_once(notifying):
    run = notifying({"snsTopicArn": TOPIC}, dryRun=True)
    status = run.run()
    assert status.phase == Phase.PLANNED
    assert [(n.channel, n.phase, n.state) for n in status.notifications] == [("sns", Phase.PLANNED, "Pending")]
    assert has_work(status)
    aftercare(run)
    [entry] = run.status.notifications
    assert (entry.state, entry.attempts, entry.message_id) == ("Delivered", 1, "m-1")
    [request] = run.sns.published
    payload = json.loads(request["Message"])
    assert payload["version"] == PAYLOAD_VERSION
    assert payload["id"] == f"{UID}/Planned"
    assert payload["phase"] == "Planned" and payload["dryRun"] is True
    assert payload["restore"] == {"name": "nightly", "namespace": "team-a", "uid": UID}
    assert payload["source"]["snapshotIdentifier"] == "prod-2025-03-01"
    assert payload["target"]["clusterIdentifier"] == "staging"
    assert request["Subject"] == "AuroraRestore team-a/nightly Planned"
    assert request["MessageAttributes"] == {"phase": {"DataType": "String", "StringValue": "Planned"}}
    assert run.status.phase == Phase.PLANNED and run.status.work_completed_at is not None
    assert not has_work(run.status) and aftercare(run) is None and len(run.sns.published) == 1


def test_the_success_is_sent_from_publishing_with_the_endpoint_and_no_secret(notifying):
    run = notifying({"webhookSecretRef": {"name": "hook"}})
    run.run_until(Phase.PUBLISHING)
    run.step()
    assert run.phase == Phase.CLEANING_UP
    [(target, payload, headers)] = run.webhook.posts
    assert target.address == "203.0.113.10" and target.host == "hooks.example.com"
    assert payload["phase"] == "Succeeded"
    assert payload["endpoint"]["writer"] and payload["endpoint"]["port"]
    assert headers["X-Aurora-Restore-Notification-Id"] == f"{UID}/Succeeded"
    status = run.run()
    assert status.phase == Phase.SUCCEEDED and len(run.webhook.posts) == 1  # not sent again on reaching it
    assert [(n.phase, n.state) for n in status.notifications] == [(Phase.SUCCEEDED, "Delivered")]
    assert "s3cr3t" not in json.dumps(status.model_dump(mode="json")) + json.dumps(payload)


def test_a_failing_webhook_is_retried_with_backoff_then_fails_with_an_event(notifying):
    run = notifying({"webhookSecretRef": {"name": "hook"}}, FakeWebhook(failures=99),
                    NotificationSettings(max_attempts=3, retry_base_seconds=10), dryRun=True)
    assert run.run().phase == Phase.PLANNED
    aftercare(run)
    [entry] = run.status.notifications
    assert (entry.state, entry.attempts) == ("Pending", 1) and "HTTP 500" in entry.error
    wait = aftercare(run)  # not due yet: 10 s after the first attempt
    assert len(run.webhook.posts) == 1 and wait.delay == 10
    run.now += timedelta(seconds=10)
    aftercare(run)
    assert run.status.notifications[0].attempts == 2
    run.now += timedelta(seconds=19)
    assert aftercare(run).delay == 1  # the second retry waits twice as long
    run.now += timedelta(seconds=1)
    aftercare(run)
    [entry] = run.status.notifications
    assert (entry.state, entry.attempts, len(run.webhook.posts)) == ("Failed", 3, 3)
    assert run.status.phase == Phase.PLANNED
    [(event_type, reason, message)] = run.events.recorded
    assert (event_type, reason) == ("Warning", "NotificationFailed")
    assert "Secret team-a/hook key url" in message and "s3cr3t" not in message and "example.com" not in message
    assert not has_work(run.status)


def test_a_refused_destination_ends_failed_at_once_without_sending(notifying):
    run = notifying({"webhookSecretRef": {"name": "hook"}}, dryRun=True)
    run.secrets.add("hook", {"url": "https://127.0.0.1/hook"})
    run.policies = {"allowing": {**ALLOWING, "webhookHosts": ["*"]}}
    run.run()
    aftercare(run)
    [entry] = run.status.notifications
    assert entry.state == "Failed" and entry.attempts == 1 and "loopback" in entry.error
    assert "127.0.0.1" not in entry.error and run.webhook.posts == []


def test_every_transition_reports_each_phase_once(notifying):
    run = notifying({"snsTopicArn": TOPIC, "on": "EveryTransition"}, dryRun=True)
    run.run()
    aftercare(run)
    phases = [json.loads(r["Message"])["phase"] for r in run.sns.published]
    assert phases == ["Pending", "ResolvingSnapshot", "Preflight", "Planned"]


def test_a_failure_is_reported_with_its_reason(notifying):
    run = notifying({"snsTopicArn": TOPIC}, source={"snapshotIdentifier": "missing"})
    assert run.run().phase == Phase.FAILED
    aftercare(run)
    payload = json.loads(run.sns.published[0]["Message"])
    assert payload["phase"] == "Failed" and payload["failure"]["reason"] == run.status.failure.reason


def test_the_default_topic_applies_to_a_notification_block_without_one(notifying):
    default = "arn:aws:sns:eu-west-1:123456789012:platform"
    run = notifying({"webhookSecretRef": {"name": "hook"}}, settings=NotificationSettings(default_topic=default),
                    policies={"no-topics": {**ALLOWING, "snsTopics": []}}, dryRun=True)
    run.run()
    aftercare(run)
    assert [r["TopicArn"] for r in run.sns.published] == [default]  # the operator's topic needs no policy
    assert outbox.channels(run.spec, None) == ["webhook"]


def test_a_topic_the_policy_does_not_allow_fails_the_restore_in_pending(notifying):
    run = notifying({"snsTopicArn": TOPIC}, policies={"no-topics": {**ALLOWING, "snsTopics": ["arn:aws:sns:*:*:x"]}})
    status = run.run()
    assert status.failure.reason == "NotAllowedByPolicy" and status.failure.phase == Phase.PENDING
    assert "snsTopics" in status.failure.message
    aftercare(run)
    assert run.sns.published == [] and run.status.notifications[0].state == "Failed"


def test_a_webhook_host_the_policy_does_not_allow_fails_the_restore_without_naming_the_host(notifying):
    run = notifying({"webhookSecretRef": {"name": "hook"}}, policies={"p": {**ALLOWING, "webhookHosts": ["x.org"]}})
    status = run.run()
    assert status.failure.reason == "NotAllowedByPolicy" and "webhookHosts" in status.failure.message
    assert "example.com" not in status.failure.message and "s3cr3t" not in status.failure.message


def test_backoff_doubles_and_pending_entries_are_queued_once():
    assert [outbox.retry_delay(n, 10) for n in (1, 2, 3, 4)] == [10, 20, 40, 80]
    entries = outbox.queue([], ["sns", "webhook"], Phase.FAILED)
    assert outbox.queue(entries, ["sns", "webhook"], Phase.FAILED) == entries
    tried = outbox.attempt_failed(entries[0], START, "boom", max_attempts=2)
    assert tried.state == "Pending" and not outbox.is_due(tried, START + timedelta(seconds=9), 10)
    assert outbox.is_due(tried, START + timedelta(seconds=10), 10)
    assert outbox.attempt_failed(tried, START, "boom", max_attempts=2).state == "Failed"
    assert outbox.next_due_in([tried, NotificationStatus(channel="sns", phase=Phase.FAILED, state="Delivered")],
                              START, 10) == 10


def test_subject_is_one_short_ascii_line_and_slack_body_escapes():
    payload = {"restore": {"namespace": "team-a", "name": "n" * 200 + "\n\u00e9"}, "phase": "Failed",
               "target": {"clusterIdentifier": "<!channel>", "region": "eu-west-1"}, "source": {},
               "id": "u/Failed", "failure": {"reason": "Timeout", "message": "<@U123> & more"}}
    text = subject(payload)
    assert len(text) < 100 and text.isascii() and "\n" not in text and text.endswith(" Failed")
    body = slack_body(payload)
    assert set(body) == {"text", "blocks"} and "<!channel>" not in json.dumps(body) and "&lt;@U123&gt;" in body["text"]


def test_the_operator_policy_lets_the_target_side_publish():
    assert "sns:Publish" in actions_of(operator_policy())


def test_cancelled_gets_one_attempt_from_the_deletion_handlers_last_turn(notifying):
    from aurora_restore.api.models import CancellationStatus
    from aurora_restore.machine import run_step
    from aurora_restore.steps.outcomes import Advance

    run = notifying({"webhookSecretRef": {"name": "hook"}}, FakeWebhook(failures=99))
    run.run_until(Phase.RESTORING_CLUSTER)
    run.status = apply_outcome(run.status, Advance(Phase.CANCELLING, "cancelling", updates={
        "cancellation": CancellationStatus(phase=run.phase, requested_at=run.now)}), run.now, 1, 20)
    for _ in range(50):
        if run.phase == Phase.CANCELLED:
            break
        run.status = apply_outcome(run.status, run_step(run.context()), run.now, 1, 20)
    assert run.phase == Phase.CANCELLED
    [entry] = run.status.notifications
    assert (entry.phase, entry.state, entry.attempts) == (Phase.CANCELLED, "Pending", 1)  # no retry: it goes
    assert [post[1]["phase"] for post in run.webhook.posts] == ["Cancelled"]


def test_an_attempt_whose_outcome_was_not_written_is_made_again_and_a_written_one_is_not(notifying):
    run = notifying({"snsTopicArn": TOPIC})
    run.run_until(Phase.PUBLISHING)
    run.crash_then_step()  # published, killed before the status was written, published again
    assert [json.loads(r["Message"])["id"] for r in run.sns.published] == [f"{UID}/Succeeded"] * 2
    run.run()
    assert len(run.sns.published) == 2 and run.status.notifications[0].state == "Delivered"


def test_an_attempt_made_before_a_step_that_waits_is_recorded(notifying):
    from aurora_restore.machine import run_step

    run = notifying({"snsTopicArn": TOPIC, "on": "EveryTransition"})
    run.lock.holders[run.lock.target] = "team-a/other"  # another restore holds the target: Pending waits
    outcome = run_step(run.context())  # Pending: reported, then the step runs
    assert type(outcome).__name__ == "Wait"
    run.status = apply_outcome(run.status, outcome, run.now, 1, 20)
    assert [(n.phase, n.state) for n in run.status.notifications][0] == (Phase.PENDING, "Delivered")
    assert len(run.sns.published) == 1


def _drill(notifying, webhook=None, settings=None, **changes):
    run = notifying({"webhookSecretRef": {"name": "hook"}}, webhook, settings,
                    drill={"keepFor": "1h", "rpoObjective": "30d"}, **changes)
    run.resource["metadata"]["creationTimestamp"] = (START - timedelta(seconds=30)).isoformat().replace("+00:00",
                                                                                                          "Z")
    return run


def test_a_drills_success_payload_names_its_own_cluster_and_carries_rto_and_rpo(notifying):
    run = _drill(notifying)
    run.run_until(Phase.PUBLISHING)
    run.step()  # Publishing sends Succeeded: CleaningUp has not recorded status.drill yet
    assert run.status.drill is None or run.status.drill.rto_seconds is None
    [(_, payload, _)] = run.webhook.posts
    drill = payload["drill"]
    assert drill["rtoSeconds"] is not None and drill["rtoSeconds"] >= 30 and drill["rpoSeconds"] is not None
    assert drill["rpoObjectiveSeconds"] == 30 * 86400 and drill["objectiveMet"] is True
    assert payload["target"]["clusterIdentifier"] == drill["clusterIdentifier"] == f"staging-drill-{UID[:8]}"
    assert drill["targetClusterIdentifier"] == "staging"
    status = run.run()
    assert drill["rtoSeconds"] == status.drill.rto_seconds and drill["rpoSeconds"] == status.drill.rpo_seconds
    assert f"drill cluster staging-drill-{UID[:8]} of target staging" in slack_body(payload)["text"]


def test_a_plain_restores_payload_has_no_drill(notifying):
    run = notifying({"webhookSecretRef": {"name": "hook"}})
    run.run()
    [(_, payload, _)] = run.webhook.posts
    assert payload["drill"] is None and payload["target"]["clusterIdentifier"] == "staging"


def test_a_notification_settling_before_a_drills_teardown_leaves_work_completed_unset(notifying):
    run = _drill(notifying, FakeWebhook(failures=1), NotificationSettings(retry_base_seconds=600),
                 ttlSecondsAfterFinished=60)
    status = run.run()
    assert status.phase == Phase.SUCCEEDED and status.notifications[0].state == "Pending"
    run.now = status.notifications[0].last_attempt_at + timedelta(seconds=600)
    aftercare(run)  # the retry is delivered; the drill's cluster is kept for another hour
    assert run.status.notifications[0].state == "Delivered"
    assert run.status.work_completed_at is None and ttl_expiry(run.status, 60) is None and has_work(run.status, 60)
    run.now = run.status.drill.delete_after
    for _ in range(30):
        if aftercare(run) is None:
            break
        run.now += timedelta(seconds=30)
    assert run.status.drill.deleted_at is not None
    assert run.status.work_completed_at is not None and run.status.work_completed_at >= run.status.drill.deleted_at
    assert ttl_expiry(run.status, 60) == run.status.work_completed_at + timedelta(seconds=60)


def test_a_host_that_does_not_resolve_now_is_retried_not_refused(notifying):
    answers = iter([UnsafeUrlUnresolved, ["203.0.113.10"]])

    def flaky_dns(host, port):
        answer = next(answers)
        if answer is UnsafeUrlUnresolved:
            raise HostUnresolved("its host does not resolve (gaierror)")
        return answer

    run = notifying({"webhookSecretRef": {"name": "hook"}}, dryRun=True)
    run.context().notifier.resolver = flaky_dns  # one Notifier shared by every context of the run
    run.run()
    aftercare(run)
    [entry] = run.status.notifications
    assert (entry.state, entry.attempts) == ("Pending", 1) and "does not resolve" in entry.error
    run.now += timedelta(seconds=10)
    aftercare(run)
    assert run.status.notifications[0].state == "Delivered" and len(run.webhook.posts) == 1


class UnsafeUrlUnresolved:
    """Marks the answer of a DNS failure in flaky_dns."""


def test_an_unexpected_error_of_an_attempt_is_a_retried_failure_named_by_its_type_only(notifying):
    class Exploding(FakeWebhook):
        def __call__(self, target, body, headers, timeout):
            super().__call__(target, body, headers, timeout)
            if len(self.posts) == 1:
                raise KeyError(HOOK_URL)  # a message that would leak the URL
            return 200

    run = notifying({"webhookSecretRef": {"name": "hook"}}, Exploding())
    run.run_until(Phase.PUBLISHING)
    run.step()  # the attempt raised: Publishing moves on all the same
    assert run.phase == Phase.CLEANING_UP
    [entry] = run.status.notifications
    assert (entry.state, entry.attempts) == ("Pending", 1) and "KeyError" in entry.error
    assert "s3cr3t" not in entry.error and "example.com" not in entry.error
    status = run.run()
    run.now += timedelta(seconds=10)
    aftercare(run)
    assert status.phase == Phase.SUCCEEDED and run.status.notifications[0].state == "Delivered"


def test_the_policies_not_being_readable_is_a_retried_attempt_failure(notifying):
    run = notifying({"snsTopicArn": TOPIC}, dryRun=True)
    run.run()
    ctx = run.context()

    class Unreachable:
        def covering(self, namespace):
            raise RetryableError("KubernetesError", "cannot list AuroraRestorePolicies: Service Unavailable")

    ctx.policies = Unreachable()
    outcome = run_aftercare(ctx)
    run.status = apply_outcome(run.status, outcome, run.now, 1, 20)
    [entry] = run.status.notifications
    assert (entry.state, entry.attempts) == ("Pending", 1) and "Service Unavailable" in entry.error
    assert run.sns.published == []
    run.now += timedelta(seconds=10)
    aftercare(run)
    assert run.status.notifications[0].state == "Delivered"


def test_a_replica_that_does_not_lead_posts_nothing(notifying):
    run = notifying({"webhookSecretRef": {"name": "hook"}}, dryRun=True)
    run.run()
    ctx = run.context()
    ctx.notifier.leading = lambda: False
    with pytest.raises(NotLeading):
        run_aftercare(ctx)
    assert run.webhook.posts == [] and run.status.notifications[0].attempts == 0


def test_a_finished_restore_whose_spec_no_longer_validates_owes_no_notification():
    entries = [NotificationStatus(channel="webhook", phase=Phase.FAILED, state="Pending", attempts=1),
               NotificationStatus(channel="sns", phase=Phase.FAILED, state="Delivered", attempts=1)]
    status = AuroraRestoreStatus(phase=Phase.FAILED, message="failed", completed_at=START, notifications=entries)
    assert has_work(status) and ttl_expiry(status, 60) is None
    outcome = unsendable_notifications(status)
    settled = apply_outcome(status, outcome, START + timedelta(minutes=1), 1, 20)
    assert [n.state for n in settled.notifications] == ["Failed", "Delivered"]
    assert "no longer validates" in settled.notifications[0].error and settled.message == "failed"
    assert not has_work(settled) and ttl_expiry(settled, 60) == START + timedelta(minutes=2)
    assert unsendable_notifications(settled) is None


def test_a_destination_is_allowed_only_by_the_policy_that_allows_the_restore(notifying):
    hooks_only = {**PERMISSIVE_POLICY, "targets": [{"region": "*", "clusterIdentifier": "elsewhere"}],
                  "webhookHosts": ["*"], "snsTopics": ["*"]}
    restores_only = {**PERMISSIVE_POLICY, "webhookHosts": [], "snsTopics": []}
    run = notifying({"snsTopicArn": TOPIC}, policies={"hooks-only": hooks_only, "restores": restores_only},
                    dryRun=True)
    status = run.run()
    # Pending: no one policy allows both the restore and the topic
    assert status.failure.reason == "NotAllowedByPolicy" and "snsTopics" in status.failure.message
    aftercare(run)
    [entry] = run.status.notifications
    assert entry.state == "Failed" and "allows this restore" in entry.error and run.sns.published == []


def test_a_policy_that_allowed_the_restore_and_its_topic_lets_it_send_and_another_one_does_not(notifying):
    run = notifying({"snsTopicArn": TOPIC}, policies={"allowing": ALLOWING}, dryRun=True)
    run.run()
    assert run.status.policy == "allowing"
    run.policies = {"allowing": {**ALLOWING, "snsTopics": []}, "other": ALLOWING}  # changed since
    aftercare(run)
    [entry] = run.status.notifications
    assert entry.state == "Failed" and "snsTopics of AuroraRestorePolicy allowing" in entry.error
    assert run.sns.published == []


def test_a_drills_success_retried_before_cleaning_up_recorded_the_drill_still_carries_rto_and_rpo(notifying):
    run = _drill(notifying, FakeWebhook(failures=1), NotificationSettings(retry_base_seconds=0))
    run.run_until(Phase.PUBLISHING)
    run.step()  # the first POST fails
    assert run.phase == Phase.CLEANING_UP and run.status.notifications[0].state == "Pending"
    run.step()  # CleaningUp's turn retries first, before its own step records status.drill
    first, second = (post[1]["drill"] for post in run.webhook.posts)
    assert second["rtoSeconds"] is not None and second["rpoSeconds"] is not None
    assert (first["rtoSeconds"], first["rpoSeconds"]) == (second["rtoSeconds"], second["rpoSeconds"])


def test_an_attempt_made_before_a_step_that_raises_something_unexpected_is_recorded_not_repeated(notifying):
    """The step breaks after the turn published (say, the apiserver answers 403 reading a Secret): the attempt is
    in the outcome, with backoff, so the next turns, which raise to the driver as before, do not publish again."""
    from aurora_restore.machine import run_step

    run = notifying({"snsTopicArn": TOPIC, "on": "EveryTransition"})

    def broken(*args, **kwargs):
        raise RuntimeError("the apiserver said 403")

    run.run_until(Phase.RESTORING_CLUSTER)
    published = len(run.sns.published)
    original, run.target.describe_cluster = run.target.describe_cluster, broken
    outcome = run_step(run.context())
    assert type(outcome).__name__ == "Wait" and outcome.backoff and "RuntimeError" in outcome.message
    assert "403" not in outcome.message
    run.status = apply_outcome(run.status, outcome, run.now, 1, 20)
    assert [(n.phase, n.state) for n in run.status.notifications][-1] == (Phase.RESTORING_CLUSTER, "Delivered")
    for _ in range(3):  # nothing attempted in these turns: the error goes to the driver, as before
        with pytest.raises(RuntimeError):
            run_step(run.context())
    assert len(run.sns.published) == published + 1  # RestoringCluster's, once
    run.target.describe_cluster = original
    assert run.run().phase == Phase.SUCCEEDED
    assert len(run.sns.published) == len(run.status.notifications)

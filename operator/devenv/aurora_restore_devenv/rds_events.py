"""An SQS queue that receives the RDS events of one account and region, as set up in AWS.

In AWS, RDS sends its events to the account's default EventBridge bus; a rule matching them with the
queue as target delivers each one to the queue (the message body is the event's JSON), provided the
queue's policy lets the EventBridge service principal send to it (EventBridge User Guide, "Amazon SQS
permissions": the queue policy allows events.amazonaws.com sqs:SendMessage for the rule's ARN). The
simulator publishes the end of every RDS transition the same way (simulator/transition_events.py).
"""

from __future__ import annotations

import json
from typing import Any

import boto3

DEFAULT_QUEUE_NAME = "aurora-restore-rds-events"
#: The simulator accepts any credentials (the account comes from a header); never real ones here.
DUMMY_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
#: The detail-types of the RDS events the operator wakes up on.
RDS_DETAIL_TYPES = ("RDS DB Cluster Event", "RDS DB Instance Event", "RDS DB Cluster Snapshot Event")
EVENT_PATTERN = {"source": ["aws.rds"], "detail-type": list(RDS_DETAIL_TYPES)}


def create_events_queue(
    endpoint_url: str, account: str, region: str, name: str = DEFAULT_QUEUE_NAME
) -> str:
    """Create (or update) the queue, its policy and the EventBridge rule targeting it in `account`
    and `region` of the simulator at `endpoint_url`; returns the queue URL. Idempotent."""
    sqs, events = (_client(service, endpoint_url, account, region) for service in ("sqs", "events"))
    queue_url = sqs.create_queue(QueueName=name)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    rule_arn = events.put_rule(Name=name, EventPattern=json.dumps(EVENT_PATTERN), State="ENABLED")["RuleArn"]
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": json.dumps(queue_policy(queue_arn, rule_arn))})
    events.put_targets(Rule=name, Targets=[{"Id": "sqs", "Arn": queue_arn}])
    return queue_url


def queue_policy(queue_arn: str, rule_arn: str) -> dict[str, Any]:
    """EventBridge may send the rule's events to the queue, and nothing else may."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "EventBridgeSendsRdsEvents",
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
            }
        ],
    }


def _client(service: str, endpoint_url: str, account: str, region: str) -> Any:
    """A client acting in `account` (the simulator takes the account from the x-moto-account-id header)."""
    client = boto3.session.Session(region_name=region, **DUMMY_CREDENTIALS).client(service, endpoint_url=endpoint_url)
    client.meta.events.register(
        f"before-sign.{client.meta.service_model.service_id.hyphenize()}.*",
        lambda request, **_: request.headers.add_header("x-moto-account-id", account),
    )
    return client

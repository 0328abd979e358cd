"""The spec fields whose values the operator sends to AWS are bounded by the models (and so by the CRD) to what AWS
takes: what the hostile-input e2e test (tests/e2e/test_hostile_input.py) found reaching AWS, or crashing the
operator, before they were."""

import re

import pytest
from pydantic import ValidationError

from aurora_restore.api.crd import build_crds
from aurora_restore.api.duration import DURATION_PATTERN, parse_duration
from aurora_restore.api.models import AuroraRestoreSpec

BASE = {"source": {"region": "us-east-1", "snapshotIdentifier": "snap"}, "target": {"clusterIdentifier": "c"}}
PASSWORD = {"secretRef": {"name": "db", "key": "password"}}


def spec(source=None, target=None, **top) -> dict:
    return {"source": {**BASE["source"], **(source or {})}, "target": {**BASE["target"], **(target or {})}, **top}


def refused(document: dict) -> str:
    with pytest.raises(ValidationError) as caught:
        AuroraRestoreSpec.model_validate(document)
    return str(caught.value)


@pytest.mark.parametrize("identifier", [
    "nightly-2026-11-25", "rds:orders-prod-2026-11-25-03-10", "awsbackup:job-1234abcd",
    "arn:aws:rds:us-east-1:210987654321:cluster-snapshot:shared-1",
    "arn:aws:rds:us-east-1:210987654321:cluster-snapshot:rds:orders-prod-2026-11-25-03-10",
    "arn:aws-us-gov:rds:us-gov-west-1:210987654321:cluster-snapshot:a",
])
def test_snapshot_identifiers_by_name_automated_name_or_arn_are_accepted(identifier):
    AuroraRestoreSpec.model_validate(spec(source={"snapshotIdentifier": identifier}))


@pytest.mark.parametrize("identifier", [
    "", "x" * 10_000, "x'; DROP TABLE users; --", "a--b", "a-", "1a", "snap\x00", "\u00e9t\u00e9", "*",
    "arn:aws:rds:us-east-1:210987654321:cluster-snapshot:a--b", "arn:aws:rds:us-east-1:1:cluster-snapshot:a",
    "rds:", "other:snap",
])
def test_snapshot_identifiers_rds_would_refuse_are_refused(identifier):
    assert "snapshotIdentifier" in refused(spec(source={"snapshotIdentifier": identifier}))


@pytest.mark.parametrize("field", ["source", "target"])
@pytest.mark.parametrize("role", [
    "arn:aws:iam::123456789012:role/aurora-restore-" + "\u00e9" * 10, "arn:aws:iam::123456789012:role/a b",
    "arn:aws:iam::123456789012:role/a\nb", "arn:aws:iam::123456789012:role/" + "x" * 65,
    "arn:aws:iam::123456789012:role/" + "p/" * 1100 + "x", "arn:aws:iam::123456789012:role/",
])
def test_role_arns_sts_would_refuse_are_refused(field, role):
    assert "roleArn" in refused(spec(**{field: {"roleArn": role}}))


@pytest.mark.parametrize("role", ["arn:aws:iam::123456789012:role/aurora-restore-team",
                                  "arn:aws:iam::123456789012:role/teams/data/restorer+x=y,z.@_-"])
def test_role_arns_with_paths_and_iam_punctuation_are_accepted(role):
    AuroraRestoreSpec.model_validate(spec(source={"roleArn": role}))


@pytest.mark.parametrize("external_id", ["x", "a b", "x\x00", "\u00e9\u00e9", "x" * 1225])
def test_external_ids_sts_would_refuse_are_refused(external_id):
    assert "externalId" in refused(spec(source={"externalId": external_id}))


@pytest.mark.parametrize(("field", "value"), [
    ("dbSubnetGroupName", "/\u00e3\x14\x18"),  # control characters made the simulated RDS answer invalid XML
    ("dbSubnetGroupName", "x" * 256),
    ("dbClusterParameterGroupName", "1-group"),
    ("dbClusterParameterGroupName", "x'; DROP TABLE users; --"),
    ("vpcSecurityGroupIds", ["sg-1", "default"]),
    ("vpcSecurityGroupIds", ["sg-\u00e9"]),
    ("kmsKeyId", "alias/a b"),
    ("kmsKeyId", "k" * 2049),
    ("engineVersion", "15.4\n"),
])
def test_names_looked_up_in_aws_are_refused_outside_what_aws_takes(field, value):
    assert field in refused(spec(target={field: value}))


def test_names_looked_up_in_aws_in_their_usual_forms_are_accepted():
    AuroraRestoreSpec.model_validate(spec(
        target={"dbSubnetGroupName": "stage databases_1.a",
                "dbClusterParameterGroupName": "default.aurora-postgresql15",
                "vpcSecurityGroupIds": ["sg-1", "sg-0123456789abcdef0"], "kmsKeyId": "alias/aws/rds",
                "engineVersion": "8.0.mysql_aurora.3.05.2",
                "instances": {"dbParameterGroupName": "pg15-inst", "performanceInsights": {
                    "kmsKeyId": "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"}}},
        copy={"kmsKeyId": "mrk-1234abcd12ab34cd56ef1234567890ab", "sourceRegionKmsKeyId": "alias/stage-rds"}))


@pytest.mark.parametrize("duration", ["999999999h", "99999999999999999999d", "100000d", "9" * 400 + "s"])
def test_durations_no_date_arithmetic_can_hold_are_refused_not_crashed_on(duration):
    """An OverflowError escaped pydantic before: the operator retried the restore forever with a traceback."""
    for document in (spec(timeout=duration),
                     {**spec(), "source": {"region": "us-east-1", "latest": {"clusterIdentifier": "c",
                                                                             "maxAge": duration}}},
                     spec(existingTarget={"policy": "Replace", "keepPrevious": duration}),
                     spec(masterPassword=PASSWORD, verification={"timeout": duration})):
        refused(document)
    with pytest.raises(ValueError):
        parse_duration(duration)


def test_the_longest_durations_allowed_still_fit_date_arithmetic():
    from datetime import datetime, timezone

    longest = parse_duration("99999d999999h9999999m99999999s")
    now = datetime.now(timezone.utc)
    assert now - longest < now < now + longest


def test_verification_timeout_fits_the_databases_statement_timeout():
    AuroraRestoreSpec.model_validate(spec(masterPassword=PASSWORD, verification={"timeout": "24d"}))
    assert "24d" in refused(spec(masterPassword=PASSWORD, verification={"timeout": "25d"}))


def test_no_pattern_of_the_crds_repeats_more_than_re2_allows():
    """The apiserver compiles patterns with Go's RE2, which refuses a repeat count above 1000."""
    patterns: list[str] = []

    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("pattern"), str):
                patterns.append(node["pattern"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(build_crds())
    assert DURATION_PATTERN in patterns
    for pattern in patterns:
        counts = [int(n) for n in re.findall(r"\{(?:\d+,)?(\d+)\}", pattern)]
        assert all(count <= 1000 for count in counts), pattern
        assert "(?" not in pattern.replace("(?i:", ""), pattern  # no look-arounds


@pytest.mark.parametrize("tags", [{"k": "a\x00b"}, {"k\x07": "v"}, {"k": "x'; DROP TABLE users; --"},
                                  {"k": "\u202e"}, {"team#1": "v"}])
def test_tags_with_characters_aws_refuses_are_refused(tags):
    assert "spec.target.tags" in refused(spec(target={"tags": tags}))


def test_tags_of_unicode_letters_digits_spaces_and_aws_punctuation_are_accepted():
    AuroraRestoreSpec.model_validate(spec(target={"tags": {"équipe données": "Zürich 1", "a_.:/=+-@": "x_.:/=+-@"}}))


@pytest.mark.parametrize(("path", "value"), [
    (("target", "instances", "instanceClass"), "db.r6g.large;"),
    (("target", "instances", "instanceClass"), "\u00e9"),
    (("target", "instances", "availabilityZone"), "us-east-1a\n"),
    (("target", "availabilityZones"), ["us-east-1a", "x'; DROP TABLE users; --"]),
    (("target", "enableCloudwatchLogsExports"), ["postgresql", "\x00"]),
    (("target", "instances", "caCertificateIdentifier"), "rds ca"),
    (("masterPassword", "secretsManagerSecretId"), "team a/master"),
    (("masterPassword", "secretRef", "name"), "../configmaps/x"),
    (("masterPassword", "secretRef", "key"), "pass word"),
    (("notification", "snsTopicArn"), "arn:aws:sns:us-east-1:123456789012:a b"),
    (("notification", "snsTopicArn"), "arn:aws:sqs:us-east-1:123456789012:queue"),
    (("notification", "snsTopicArn"), "arn:aws:sns:us-east-1:123456789012:" + "t" * 257),
    (("notification", "snsTopicArn"), "arn:aws:sns:us-east-1:123456789012:t\n"),
    (("notification", "webhookSecretRef", "name"), "../secrets/x"),
    (("notification", "webhookSecretRef", "key"), "u rl"),
    (("notification", "webhookFormat"), "XML"),
    (("notification", "on"), "Sometimes"),
])
def test_other_values_sent_to_aws_or_kubernetes_are_refused_outside_what_they_take(path, value):
    document = spec(masterPassword={"secretRef": {"name": "db", "key": "password"}})
    if path[0] == "masterPassword" and path[1] == "secretsManagerSecretId":
        document["masterPassword"] = {}
    node = document
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    assert path[-1] in refused(document)


def test_the_usual_values_of_those_fields_are_accepted():
    AuroraRestoreSpec.model_validate(spec(
        target={"availabilityZones": ["us-east-1a", "us-west-2-lax-1a"], "enableCloudwatchLogsExports": ["postgresql"],
                "instances": {"instanceClass": "db.serverless", "availabilityZone": "us-east-1b",
                              "caCertificateIdentifier": "rds-ca-rsa2048-g1"}},
        masterPassword={"secretsManagerSecretId": "arn:aws:secretsmanager:us-east-1:123456789012:secret:a/b-AbCdEf"}))

"""aws/arn.py: the fields of an ARN, and names that are not ARNs."""

import pytest

from aurora_restore.aws.arn import Arn, account_of, name_of, region_of


def test_an_rds_arn_gives_its_fields_and_resource_type():
    arn = Arn.parse("arn:aws-cn:rds:cn-north-1:111122223333:cluster-snapshot:nightly:2026")
    assert arn == Arn("aws-cn", "rds", "cn-north-1", "111122223333", "cluster-snapshot:nightly:2026")
    assert arn.resource_type == "cluster-snapshot"


def test_a_resource_without_a_type_has_none():
    arn = Arn.parse("arn:aws:sns:eu-west-1:111122223333:restores.fifo")
    assert (arn.region, arn.account, arn.resource, arn.resource_type) == (
        "eu-west-1", "111122223333", "restores.fifo", "")


@pytest.mark.parametrize("text", [None, "", "nightly", "rds:nightly-2026-12-01", "arn:aws:rds:eu-west-1:1"])
def test_names_and_truncated_arns_are_not_arns(text):
    assert Arn.parse(text) is None
    assert account_of(text) is None and region_of(text) is None


def test_global_resources_name_no_region_and_s3_no_account():
    assert (region_of("arn:aws:iam::111122223333:role/restore"), account_of("arn:aws:iam::111122223333:role/x")) \
        == (None, "111122223333")
    assert (account_of("arn:aws:s3:::bucket"), region_of("arn:aws:s3:::bucket")) == (None, None)


def test_an_rds_name_is_read_whole_from_an_arn_and_a_copy_keeps_the_type():
    automated = Arn.parse("arn:aws:rds:eu-west-1:123456789012:cluster-snapshot:rds:prod-2025-03-02")
    assert automated.resource_name == "rds:prod-2025-03-02"
    assert automated.renamed("shared-copy") == "arn:aws:rds:eu-west-1:123456789012:cluster-snapshot:shared-copy"
    assert name_of("arn:aws:rds:eu-west-1:123456789012:cluster-snapshot:rds:prod-2025-03-02") == "rds:prod-2025-03-02"
    assert name_of("rds:prod-2025-03-02") == "rds:prod-2025-03-02"
    assert name_of("prod") == "prod"
    assert Arn.parse("arn:aws:sns:eu-west-1:123456789012:topic").resource_name == "topic"

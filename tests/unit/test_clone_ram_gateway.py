"""RamGateway over a real boto3 RAM client answered by botocore's Stubber: the requests it sends, what it skips, and
how RAM's errors are classified (retried, terminal, or a share already gone)."""

import boto3
import pytest
from botocore.stub import Stubber

from aurora_restore.aws.ram import RamGateway
from aurora_restore.errors import RetryableError, TerminalError

REGION = "eu-west-1"
SHARE = "arn:aws:ram:eu-west-1:210987654321:resource-share/0f0e0d0c-1111-2222-3333-444455556666"
CLUSTER = "arn:aws:rds:eu-west-1:210987654321:cluster:prod"
UID_TAG = "dbrestore.io/restore-uid"
UID = "7d3f9a2e-4c1b-4e8a-9f0d-2b6c8e1a5f37"


@pytest.fixture
def ram():
    client = boto3.client("ram", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stub:
        yield RamGateway(client, REGION), stub
        stub.assert_no_pending_responses()


def share(status: str, tag_value: str = UID, arn: str = SHARE) -> dict:
    return {"resourceShareArn": arn, "name": "aurora-restore-team-a-nightly-7d3f9a2e", "status": status,
            "tags": [{"key": UID_TAG, "value": tag_value}]}


def test_find_share_reads_every_page_and_skips_deleted_shares(ram):
    gateway, stub = ram
    filters = [{"tagKey": UID_TAG, "tagValues": [UID]}]
    stub.add_response("get_resource_shares", {"resourceShares": [share("DELETED", arn=SHARE + "-old")],
                                              "nextToken": "page-2"},
                      {"resourceOwner": "SELF", "tagFilters": filters})
    stub.add_response("get_resource_shares", {"resourceShares": [share("ACTIVE")]},
                      {"resourceOwner": "SELF", "tagFilters": filters, "nextToken": "page-2"})
    assert gateway.find_share(UID_TAG, UID)["resourceShareArn"] == SHARE


def test_find_share_finds_none_when_only_deleted_ones_carry_the_tag(ram):
    gateway, stub = ram
    stub.add_response("get_resource_shares", {"resourceShares": [share("DELETED")]})
    assert gateway.find_share(UID_TAG, UID) is None


def test_create_share_allows_external_principals_and_tags_the_share(ram):
    gateway, stub = ram
    stub.add_response("create_resource_share", {"resourceShare": share("ACTIVE")}, {
        "name": "n", "resourceArns": [CLUSTER], "principals": ["123456789012"], "allowExternalPrincipals": True,
        "tags": [{"key": UID_TAG, "value": UID}, {"key": "managed-by", "value": "aurora-restore-operator"}],
        "clientToken": UID})
    created = gateway.create_share("n", CLUSTER, "123456789012",
                                   {"managed-by": "aurora-restore-operator", UID_TAG: UID}, client_token=UID)
    assert created["resourceShareArn"] == SHARE


@pytest.mark.parametrize("code", ["UnknownResourceException", "InvalidStateTransitionException"])
def test_deleting_a_share_already_gone_is_fine(ram, code):
    gateway, stub = ram
    stub.add_client_error("delete_resource_share", service_error_code=code, http_status_code=400,
                          expected_params={"resourceShareArn": SHARE})
    gateway.delete_share(SHARE)


def test_accepting_an_invitation_twice_is_fine(ram):
    gateway, stub = ram
    stub.add_client_error("accept_resource_share_invitation",
                          service_error_code="ResourceShareInvitationAlreadyAcceptedException", http_status_code=400)
    gateway.accept_invitation(SHARE + "/invitation", client_token=UID)


def test_an_unknown_share_has_no_invitation(ram):
    gateway, stub = ram
    stub.add_client_error("get_resource_share_invitations", service_error_code="UnknownResourceException",
                          http_status_code=400)
    assert gateway.invitations(SHARE) == []


@pytest.mark.parametrize("code, status, error, reason", [
    ("ServerInternalException", 500, RetryableError, "AwsServerError"),
    ("ServiceUnavailableException", 503, RetryableError, "AwsServerError"),
    ("ThrottlingException", 400, RetryableError, "AwsThrottling"),
    ("OperationNotPermittedException", 400, TerminalError, "OperationNotPermittedException"),
    ("ResourceShareLimitExceededException", 400, TerminalError, "ResourceShareLimitExceededException"),
])
def test_ram_errors_are_classified_like_the_rest(ram, code, status, error, reason):
    gateway, stub = ram
    stub.add_client_error("create_resource_share", service_error_code=code, http_status_code=status)
    with pytest.raises(error) as raised:
        gateway.create_share("n", CLUSTER, "123456789012", {UID_TAG: UID}, client_token=UID)
    assert raised.value.reason == reason and "create_resource_share" in raised.value.message

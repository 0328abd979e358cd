"""The audited operations are exactly the mutating ones the operator calls: each is a real botocore operation whose
resource parameter exists, and every operation the operator's code calls that is not a read is in the table."""

import re
from pathlib import Path

import botocore.session
import pytest
from botocore import xform_name

import aurora_restore
from aurora_restore.obs.audit import AUDITED_OPERATIONS

SOURCE = Path(aurora_restore.__file__).parent
SERVICES = ("rds", "kms", "ec2", "secretsmanager", "sts", "sns", "ram")
# Operations that change nothing in the account although their name does not say so.
NOT_MUTATING = {("sts", "AssumeRole"), ("sts", "AssumeRoleWithWebIdentity")}
READ_PREFIXES = ("Describe", "List", "Get")


def service_model(service: str):
    return botocore.session.get_session().get_service_model(service)


def operations_the_code_names() -> set[tuple[str, str]]:
    """(service, operation) for every botocore operation the code calls on a client (`client.delete_db_cluster(`,
    `sts.assume_role(`) or names as a string (`_call("copy_db_cluster_snapshot", ...)`, paginators, tables)."""
    text = "\n".join(path.read_text() for path in SOURCE.rglob("*.py"))
    names = set(re.findall(r"\b(?:client|sts|sns)\.([a-z][a-z0-9_]+)\(", text))
    names |= set(re.findall(r"[\"']([a-z][a-z0-9]*_[a-z0-9_]+)[\"']", text))
    return {
        (service, operation)
        for service in SERVICES
        for operation in service_model(service).operation_names
        if xform_name(operation) in names
    }


@pytest.mark.parametrize("service,operation", sorted(AUDITED_OPERATIONS))
def test_each_audited_operation_is_real_and_names_its_resource_by_a_real_parameter(service, operation):
    model = service_model(service)
    assert model.signing_name == service  # the action prefix the hooks build ("rds:...")
    assert operation in model.operation_names
    parameter, _kind = AUDITED_OPERATIONS[(service, operation)]
    assert parameter in model.operation_model(operation).input_shape.members


def test_every_mutating_operation_the_operator_calls_is_audited():
    called = operations_the_code_names()
    assert ("rds", "RestoreDBClusterFromSnapshot") in called  # the scan finds the calls at all
    assert ("rds", "DescribeDBClusters") in called
    mutating = {
        (service, operation) for service, operation in called
        if not operation.startswith(READ_PREFIXES) and (service, operation) not in NOT_MUTATING
    }
    assert mutating - set(AUDITED_OPERATIONS) == set()


def test_no_read_is_audited():
    assert [key for key in AUDITED_OPERATIONS if key[1].startswith(READ_PREFIXES)] == []

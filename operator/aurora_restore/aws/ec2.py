"""Ec2Gateway: the only EC2 question the operator asks — which security groups exist."""

from botocore.exceptions import ClientError

from .errors import TRANSPORT_ERRORS, classify, error_code


class Ec2Gateway:
    def __init__(self, client, region: str):
        self.client = client
        self.region = region

    def missing_security_groups(self, group_ids: list[str]) -> list[str]:
        """Those of `group_ids` that do not exist in the region."""
        missing = []
        for group_id in group_ids:  # one by one: a single unknown id fails the whole batch call
            try:
                self.client.describe_security_groups(GroupIds=[group_id])
            except ClientError as error:
                if error_code(error) in ("InvalidGroup.NotFound", "InvalidGroupId.Malformed"):
                    missing.append(group_id)
                else:
                    raise classify(error, f"describe_security_groups in {self.region}") from None
            except TRANSPORT_ERRORS as error:
                raise classify(error, f"describe_security_groups in {self.region}") from None
        return missing

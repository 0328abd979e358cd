"""KmsGateway: whether a KMS key exists and who manages it (AWS-managed keys cannot be shared)."""

from typing import Any

from botocore.exceptions import ClientError

from .errors import TRANSPORT_ERRORS, classify, error_code

NOT_FOUND_CODES = frozenset({"NotFoundException", "NotFound"})


class KmsGateway:
    def __init__(self, client, region: str):
        self.client = client
        self.region = region

    def describe_key(self, key_id: str) -> dict[str, Any] | None:
        """KeyMetadata for a key id, ARN, alias name or alias ARN; None when there is no such key."""
        try:
            return self.client.describe_key(KeyId=key_id)["KeyMetadata"]
        except ClientError as error:
            if error_code(error) in NOT_FOUND_CODES:
                return None
            raise classify(error, f"describe_key in {self.region}") from None
        except TRANSPORT_ERRORS as error:
            raise classify(error, f"describe_key in {self.region}") from None

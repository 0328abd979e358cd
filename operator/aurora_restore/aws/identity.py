"""Which AWS account an identity acts in (STS GetCallerIdentity), asked once per identity and remembered."""

import functools

from botocore.exceptions import ClientError

from .errors import TRANSPORT_ERRORS, classify


class AccountOf:
    """The account of one identity (the operator's own, or an assumed role)."""

    def __init__(self, sts_client):
        self.client = sts_client

    @functools.cached_property
    def account_id(self) -> str:
        try:
            return self.client.get_caller_identity()["Account"]
        except (ClientError, *TRANSPORT_ERRORS) as error:
            raise classify(error, "get_caller_identity") from None

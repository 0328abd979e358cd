"""SecretsManagerGateway: reading secret values. The values are returned to the caller and nowhere else."""

from botocore.exceptions import ClientError

from .errors import TRANSPORT_ERRORS, classify, error_code

NOT_FOUND = "ResourceNotFoundException"


class SecretsManagerGateway:
    """Secrets Manager in one region, through an injectable boto3 client."""

    def __init__(self, client, region: str):
        self.client = client
        self.region = region

    def get_secret_string(self, secret_id: str) -> str | None:
        """The secret's current string value; None while the secret does not exist (it may be created later)."""
        try:
            return self.client.get_secret_value(SecretId=secret_id).get("SecretString")
        except ClientError as error:
            if error_code(error) == NOT_FOUND:
                return None
            raise classify(error, f"get_secret_value {secret_id!r} in {self.region}") from None
        except TRANSPORT_ERRORS as error:
            raise classify(error, f"get_secret_value in {self.region}") from None

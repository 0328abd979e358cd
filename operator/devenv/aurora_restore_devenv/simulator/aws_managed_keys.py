"""AWS-managed KMS keys (alias/aws/rds and the other reserved aliases) report KeyManager "AWS", as in AWS.

moto creates them on first use but marks them "CUSTOMER"; the operator must tell them apart because AWS refuses
to share a snapshot encrypted with an AWS-managed key with another account.
"""

from __future__ import annotations

from moto.kms.models import KmsBackend

_original = KmsBackend._generate_default_keys


def _generate_aws_managed_key(self: KmsBackend, alias_name: str) -> str | None:
    key_id = _original(self, alias_name)
    if key_id is not None:
        self.keys[key_id].key_manager = "AWS"
    return key_id


def install() -> None:
    KmsBackend._generate_default_keys = _generate_aws_managed_key

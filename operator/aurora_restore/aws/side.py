"""One side of a restore: an identity (the operator's own, or a role it assumes) acting in one region.

A restore has two: the source (the snapshot's account, through spec.source.roleArn) and the target (the new
cluster's account, through spec.target.roleArn). Gateways are built on first use, so a turn that only looks at
RDS builds no other client; `in_region` is the same identity elsewhere (the target account in the source region
copies a shared snapshot there before it crosses regions).
"""

from functools import cached_property

from .clients import AwsClients
from .ec2 import Ec2Gateway
from .identity import AccountOf
from .kms import KmsGateway
from .ram import RamGateway
from .rds import RdsGateway
from .secrets import SecretsManagerGateway


class AwsSide:
    """The gateways of one identity in one region."""

    def __init__(self, clients: AwsClients, region: str, role_arn: str | None = None, external_id: str | None = None):
        self.clients = clients
        self.region = region
        self.role_arn = role_arn
        self.external_id = external_id

    def _client(self, service: str):
        return self.clients.client(service, self.region, self.role_arn, self.external_id)

    @cached_property
    def rds(self) -> RdsGateway:
        observer = self.clients.observer(self.region, self.role_arn, self.external_id)
        return RdsGateway(self._client("rds"), self.region, observer)

    @cached_property
    def kms(self) -> KmsGateway:
        return KmsGateway(self._client("kms"), self.region)

    @cached_property
    def ram(self) -> RamGateway:
        """AWS RAM: a cross-account clone's share of the source cluster (steps/clone.py)."""
        return RamGateway(self._client("ram"), self.region)

    @cached_property
    def ec2(self) -> Ec2Gateway:
        return Ec2Gateway(self._client("ec2"), self.region)

    @cached_property
    def secrets_manager(self) -> SecretsManagerGateway:
        return SecretsManagerGateway(self._client("secretsmanager"), self.region)

    @cached_property
    def sns(self):
        """The SNS client (notify/notifier.py publishes with it)."""
        return self._client("sns")

    @cached_property
    def account(self) -> AccountOf:
        """The account this identity acts in (asked of STS once per identity, then remembered)."""
        return self.clients.identity(self.region, self.role_arn, self.external_id)

    def in_region(self, region: str) -> "AwsSide":
        return self if region == self.region else AwsSide(self.clients, region, self.role_arn, self.external_id)

"""ARNs, read in one place: arn:<partition>:<service>:<region>:<account>:<resource>.

Restores name snapshots, roles and topics by ARN, and RDS events name their resource by one; the operator reads
their region (where to call), account (whose resource) and partition (how to name a copy) from them. Anything that
does not start with `arn:` or has fewer than six fields is a name, not an ARN (None).
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Arn:
    partition: str
    service: str
    region: str
    account: str
    resource: str  # what follows the account: `cluster:name`, `role/name`, a topic's name

    @classmethod
    def parse(cls, text: str | None) -> "Arn | None":
        if not text or not text.startswith("arn:"):
            return None
        fields = text.split(":", 5)
        if len(fields) < 6:
            return None
        return cls(*fields[1:])

    @property
    def resource_type(self) -> str:
        """The type of a `type:name` resource (RDS: `cluster`, `db`, `cluster-snapshot`); empty for others."""
        kind, separator, _ = self.resource.partition(":")
        return kind if separator else ""

    @property
    def resource_name(self) -> str:
        """The name of a `type:name` resource, whole: an automated snapshot's is `rds:<name>`, as RDS names it."""
        _, separator, name = self.resource.partition(":")
        return name if separator else self.resource

    def renamed(self, name: str) -> str:
        """This ARN with another resource of the same type: the ARN a copy named `name` will have."""
        resource = f"{self.resource_type}:{name}" if self.resource_type else name
        return f"arn:{self.partition}:{self.service}:{self.region}:{self.account}:{resource}"


def account_of(text: str | None) -> str | None:
    """The account an ARN names; None for a name or an ARN without one (an S3 bucket's)."""
    arn = Arn.parse(text)
    return arn.account if arn is not None and arn.account else None


def region_of(text: str | None) -> str | None:
    """The region an ARN names; None for a name or a global resource's ARN (IAM's)."""
    arn = Arn.parse(text)
    return arn.region if arn is not None and arn.region else None


def name_of(text: str) -> str:
    """The RDS name an identifier gives, whether it is a name or an ARN (`...:cluster-snapshot:rds:x` is `rds:x`)."""
    arn = Arn.parse(text)
    return arn.resource_name if arn is not None else text

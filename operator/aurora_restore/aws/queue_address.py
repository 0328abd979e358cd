"""What an SQS queue URL names (region, account, queue), for the events listener and its IAM statement.

Kept apart from the listener (aws/rds_events.py) so that `aurora-restore iam-policy` stays light: json and re only.
"""

import re
from dataclasses import dataclass
from urllib.parse import urlparse

# sqs.<region>.amazonaws.com[.cn], its VPC endpoints (vpce-....sqs.<region>.vpce.amazonaws.com) and the legacy
# <region>.queue.amazonaws.com.
_SQS_HOST = re.compile(r"(?:^|\.)sqs\.(?P<region>[a-z0-9-]+)\.(?:vpce\.)?amazonaws\.com(?P<cn>\.cn)?$")
_LEGACY_SQS_HOST = re.compile(r"^(?P<region>[a-z0-9-]+)\.queue\.amazonaws\.com(?P<cn>\.cn)?$")


@dataclass(frozen=True)
class QueueAddress:
    """What a queue URL (https://sqs.<region>.amazonaws.com/<account>/<name>) names; `region` is None for a URL
    that does not say (an endpoint of one's own, such as the local simulator's)."""

    url: str
    region: str | None
    account: str
    name: str
    partition: str | None = None  # aws-cn for a .amazonaws.com.cn host; None when the host does not say

    @classmethod
    def parse(cls, url: str) -> "QueueAddress":
        parsed = urlparse(url)
        parts = [part for part in parsed.path.split("/") if part]
        if len(parts) != 2 or not re.fullmatch(r"[0-9]{12}", parts[0]):
            raise ValueError("an SQS queue URL ends in /<12-digit account>/<queue name>")
        host = parsed.hostname or ""
        match = _SQS_HOST.search(host) or _LEGACY_SQS_HOST.match(host)
        region = match["region"] if match else None
        partition = ("aws-cn" if match["cn"] else "aws") if match else None
        return cls(url, region, parts[0], parts[1], partition)

    def arn(self, partition: str = "aws") -> str:
        """The queue's ARN (any region when the URL does not name one), for IAM policies."""
        return f"arn:{self.partition or partition}:sqs:{self.region or '*'}:{self.account}:{self.name}"

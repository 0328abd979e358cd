"""What an incoming AWS API request is: service, action, region, account and protocol.

The middleware needs this before moto sees the request, to log it and to decide whether a
fault answers it instead. Only headers and form bodies are read; a form body is buffered and
put back so that moto can read it again.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from moto.core import DEFAULT_ACCOUNT_ID
from moto.iam.models import get_account_id_from

from .ram import ram_action

DEFAULT_REGION = "us-east-1"

# Requests that botocore sends unsigned (no Authorization header), by action.
UNSIGNED_ACTIONS = {
    "AssumeRoleWithWebIdentity": "sts",
    "AssumeRoleWithSAML": "sts",
}

# Request parameters the log keeps, so tests can tell whose call it was and what it asked (which role, with which
# external ID, for which resource). Never a password or a secret: those stay out of the log.
LOGGED_PARAMETERS = frozenset({
    "RoleArn", "RoleSessionName", "ExternalId",
    "DBClusterIdentifier", "DBInstanceIdentifier", "NewDBClusterIdentifier", "SourceDBClusterIdentifier",
    "DBClusterSnapshotIdentifier", "SourceDBClusterSnapshotIdentifier", "TargetDBClusterSnapshotIdentifier",
    "SnapshotIdentifier", "KmsKeyId", "SourceRegion", "ResourceName",
})

# The same for RAM (rest-json: the JSON body and the query string); lists are logged comma-separated.
RAM_LOGGED_PARAMETERS = frozenset({
    "name", "resourceShareArn", "resourceShareArns", "resourceArns", "principals", "resourceShareInvitationArn",
    "resourceOwner",
})

# The access key id inside a SigV4 Authorization header (moto uses the same pattern).
_ACCESS_KEY = re.compile(r"Credential=(?P<access_key>[A-Za-z0-9]+)/")


@dataclass(frozen=True)
class AwsRequest:
    """The parts of a request that logging and fault injection match on."""

    service: str | None
    action: str | None
    region: str
    account: str
    #: "json" for the JSON protocols (X-Amz-Target or a JSON body), "query" otherwise.
    protocol: str
    method: str
    path: str
    #: Who called: boto3's User-Agent (the operator appends "aurora-restore-operator" to its own).
    user_agent: str = ""
    #: The LOGGED_PARAMETERS the request carried (query protocol; first value of each).
    parameters: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_environ(cls, environ: dict[str, Any]) -> AwsRequest:
        """Read a WSGI environ; buffers a form body so that it can be read again."""
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        content_type = environ.get("CONTENT_TYPE", "")
        form = _read_form(environ)
        action = _first(form.get("Action")) or _first(
            parse_qs(environ.get("QUERY_STRING", "")).get("Action")
        )
        if not action and target:
            action = target.rsplit(".", 1)[-1]

        service, region = _credential_scope(environ.get("HTTP_AUTHORIZATION", ""))
        if not action and service == "ram":  # rest-json: the operation is the path
            action = ram_action(environ.get("PATH_INFO", "/"))
        if service is None and action in UNSIGNED_ACTIONS:
            service = UNSIGNED_ACTIONS[action]

        is_json = bool(target) or "json" in content_type
        parameters = {key: values[0] for key, values in form.items() if key in LOGGED_PARAMETERS and values}
        if service == "ram":
            parameters = _ram_parameters(environ)
        return cls(
            service=service,
            action=action or None,
            region=region or DEFAULT_REGION,
            account=_account(environ),
            protocol="json" if is_json else "query",
            method=environ.get("REQUEST_METHOD", "GET"),
            path=environ.get("PATH_INFO", "/"),
            user_agent=environ.get("HTTP_USER_AGENT", ""),
            parameters=parameters,
        )


def _credential_scope(authorization: str) -> tuple[str | None, str | None]:
    """Service and region from `Credential=AKID/DATE/REGION/SERVICE/aws4_request`."""
    marker = "Credential="
    start = authorization.find(marker)
    if start < 0:
        return None, None
    scope = authorization[start + len(marker) :].split(",", 1)[0].strip()
    parts = scope.split("/")
    if len(parts) != 5:
        return None, None
    return parts[3].lower(), parts[2]


def _account(environ: dict[str, Any]) -> str:
    """The account moto will act in: the x-moto-account-id header, else the access key's.

    Access keys handed out by the simulator's STS belong to the role's account; moto keeps
    that mapping, so ask it rather than guessing.
    """
    explicit = environ.get("HTTP_X_MOTO_ACCOUNT_ID")
    if explicit:
        return explicit
    match = _ACCESS_KEY.search(environ.get("HTTP_AUTHORIZATION", ""))
    if not match:
        return DEFAULT_ACCOUNT_ID
    return get_account_id_from(match.group("access_key"))


def _read_form(environ: dict[str, Any]) -> dict[str, list[str]]:
    """Parse a form-encoded body and put the bytes back for the application."""
    if not environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
        return {}
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return {}
    if length <= 0:
        return {}
    body = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(body)
    return parse_qs(body.decode("utf-8", errors="replace"))


def _ram_parameters(environ: dict[str, Any]) -> dict[str, str]:
    """RAM_LOGGED_PARAMETERS of a RAM request; the body is buffered and put back for the simulator's RAM."""
    found: dict[str, Any] = {key: values[0] for key, values in parse_qs(environ.get("QUERY_STRING", "")).items()}
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > 0:
        body = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(body)
        try:
            decoded = json.loads(body)
        except ValueError:
            decoded = None
        if isinstance(decoded, dict):
            found.update(decoded)
    return {
        key: ",".join(map(str, value)) if isinstance(value, list) else str(value)
        for key, value in found.items()
        if key in RAM_LOGGED_PARAMETERS and value not in (None, "", [])
    }


def _first(values: list[str] | None) -> str | None:
    return values[0] if values else None

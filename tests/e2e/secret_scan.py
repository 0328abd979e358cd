"""The whole-session secret scan: what the e2e session must keep until the end, every secret value it used, and
a scanner that looks for each of them, raw and encoded, in everything the operator and the simulator wrote.

The fixtures record what is gone by the time the scan runs (an AuroraRestore's status is deleted with it at the
end of its test, an operator's /metrics stops with it) into `SESSION`; test_secret_scan.py collects the secret
values and scans at the end of the session.
"""

from __future__ import annotations

import base64
import json
import urllib.parse
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import yaml
from botocore.exceptions import ClientError
from kubernetes import client

from aurora_restore.api import GROUP, PLURAL, VERSION
from aurora_restore_devenv.environment import WEB_IDENTITY_TOKEN

# Shorter values (ports, "x", "stale") occur by chance in any log, so a scan for them says nothing.
MINIMUM_SECRET_LENGTH = 8
# Keys of Secrets (and of JSON secrets in Secrets Manager) that hold connection details, not secrets. A
# connection Secret's `uri` contains the password: the scan looks for the password itself, in every form.
NON_SECRET_KEYS = frozenset({
    "host", "port", "username", "user", "dbname", "database", "endpoint", "readerEndpoint", "engine", "uri",
    "dbClusterIdentifier", "ca.crt", "tls.crt", "namespace",
})
# Secrets whose data is not a secret: helm's release records (the rendered chart, compressed).
NON_SECRET_TYPES = frozenset({"helm.sh/release.v1"})
REDACTED = "[REDACTED]"
EXCERPT_CONTEXT = 40
_URLSAFE = str.maketrans("+/", "-_")


@dataclass(frozen=True)
class SecretValue:
    value: str = field(repr=False)  # so that no assertion message or traceback shows it
    #: Where the value was found, e.g. "Secret t-1a2b/passwords[rw]"; never the value.
    origin: str


@dataclass(frozen=True)
class Hit:
    """A secret found where it must not be; prints without the secret."""

    where: str
    form: str
    origin: str
    excerpt: str

    def __str__(self) -> str:
        return f"{self.where}: {self.form} form of {self.origin}: ...{self.excerpt}..."


@dataclass
class SessionRecord:
    """What the e2e session produced that is gone, or out of reach, by the time the scan runs."""

    #: (which test's operator, log path), one per operator fixture.
    operator_logs: list[tuple[str, Path]] = field(default_factory=list)
    #: (where, text) of each operator's /metrics, scraped before it stopped.
    metrics: list[tuple[str, str]] = field(default_factory=list)
    #: Tests whose operator answered no /metrics at the end (killed by the test and not restarted).
    metrics_unreachable: list[str] = field(default_factory=list)
    #: (where, JSON of status and annotations) of each AuroraRestore, before its namespace's teardown deleted it.
    statuses: list[tuple[str, str]] = field(default_factory=list)
    #: Passwords tests gave AWS directly (MasterUserPassword): no Secret or Secrets Manager secret holds them.
    passwords: list[SecretValue] = field(default_factory=list)
    #: Values of each test namespace's Secrets before its teardown deleted the restores: the garbage collector
    #: then removes the Secrets those restores owned (connection Secrets of deletionPolicy Delete).
    secrets: list[SecretValue] = field(default_factory=list)

    def record_operator(self, test: str, log_path: Path, metrics_port: str) -> None:
        """The operator's log path, and its /metrics while it still answers (the fixture stops it next)."""
        self.operator_logs.append((test, Path(log_path)))
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as response:
                self.metrics.append((f"/metrics of the operator of {test}", response.read().decode()))
        except OSError:
            self.metrics_unreachable.append(test)

    def record_restores(self, restores: Iterable[dict[str, Any]]) -> None:
        """Statuses and annotations of restores about to be deleted (the namespace fixture's teardown)."""
        self.statuses.extend(restore_texts(restores))

    def record_secrets(self, values: Iterable[SecretValue]) -> None:
        """Secret values of a namespace about to be torn down (its owned Secrets go with its restores)."""
        self.secrets.extend(values)

    def remember_password(self, value: str, origin: str) -> None:
        """A password a test or helper gives AWS straight away (MasterUserPassword), which no store holds."""
        if all(known.value != value for known in self.passwords):
            self.passwords.append(SecretValue(value, origin))


SESSION = SessionRecord()


# -- secret values ------------------------------------------------------------------------------------------


def kubernetes_secret_values(api_client, namespace: str | None = None) -> list[SecretValue]:
    """Every Secret value in every namespace (or in `namespace`), except connection details (NON_SECRET_KEYS)
    and helm's release records. A ServiceAccount token Secret's token is a credential and is kept. Secrets owned
    by restores that are gone were collected by the garbage collector: SESSION.secrets has their values."""
    values = []
    core = client.CoreV1Api(api_client)
    listed = core.list_namespaced_secret(namespace) if namespace else core.list_secret_for_all_namespaces()
    for secret in listed.items:
        if secret.type in NON_SECRET_TYPES:
            continue
        for key, encoded in (secret.data or {}).items():
            if key in NON_SECRET_KEYS:
                continue
            try:
                value = base64.b64decode(encoded).decode()
            except UnicodeDecodeError:
                continue  # binary data: no text form to look for
            values.append(SecretValue(value, f"Secret {secret.metadata.namespace}/{secret.metadata.name}[{key}]"))
    return values


def secrets_manager_places(calls: Iterable[dict[str, Any]]) -> set[tuple[str, str]]:
    """(account, region) pairs where the session can have made secrets: Secrets Manager calls, and RDS calls
    (RDS keeps managed master passwords in Secrets Manager)."""
    return {(call["account"], call["region"]) for call in calls if call["service"] in ("secretsmanager", "rds")}


def secrets_manager_values(endpoint_url: str, places: Iterable[tuple[str, str]]) -> list[SecretValue]:
    """Every version of every secret in the simulator's Secrets Manager in `places`, RDS-managed ones included;
    of a JSON object, its string fields except connection details."""
    values = []
    for account, region in sorted(places):
        secrets_manager = client_in_account("secretsmanager", account, region, endpoint_url)
        for page in secrets_manager.get_paginator("list_secrets").paginate():
            for secret in page["SecretList"]:
                for version in secrets_manager.list_secret_version_ids(
                    SecretId=secret["ARN"], IncludeDeprecated=True
                )["Versions"]:
                    try:
                        answer = secrets_manager.get_secret_value(SecretId=secret["ARN"],
                                                                  VersionId=version["VersionId"])
                    except ClientError:
                        continue  # deleted meanwhile, or a version without a value
                    origin = f"Secrets Manager secret {account}/{region}/{secret['Name']}"
                    values += secret_string_values(answer.get("SecretString"), origin)
    return values


def secret_string_values(secret_string: str | None, origin: str) -> list[SecretValue]:
    """A plain SecretString is one value; a JSON object gives its string fields (`password` and the like)."""
    if secret_string is None:
        return []
    try:
        parsed = json.loads(secret_string)
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        return [SecretValue(secret_string, origin)]
    return [
        SecretValue(value, f"{origin} ({key})")
        for key, value in parsed.items()
        if isinstance(value, str) and key not in NON_SECRET_KEYS
    ]


def client_in_account(service: str, account: str, region: str, endpoint_url: str) -> Any:
    """A simulator client acting in `account` (the simulator's x-moto-account-id header)."""
    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                    region_name=region)
    aws_client = session.client(service, endpoint_url=endpoint_url)
    aws_client.meta.events.register(
        "before-sign.*.*", lambda request, **_: request.headers.add_header("x-moto-account-id", account)
    )
    return aws_client


def kubeconfig_tokens(kubeconfig: Path) -> list[SecretValue]:
    """Bearer tokens in a kubeconfig (the operator's ServiceAccount token): credentials no log may show."""
    config = yaml.safe_load(Path(kubeconfig).read_text())
    return [
        SecretValue(user["user"]["token"], f"token of kubeconfig user {user['name']}")
        for user in config.get("users") or []
        if (user.get("user") or {}).get("token")
    ]


def worth_scanning(values: Iterable[SecretValue]) -> list[SecretValue]:
    """Each distinct value once (its first origin), leaving out values shorter than MINIMUM_SECRET_LENGTH:
    they occur by chance in any text, so finding one proves nothing and a scan for them only fails at random."""
    kept: dict[str, SecretValue] = {}
    for secret in values:
        if len(secret.value) >= MINIMUM_SECRET_LENGTH and secret.value not in kept:
            kept[secret.value] = secret
    return list(kept.values())


# -- where to look ------------------------------------------------------------------------------------------


def restore_texts(restores: Iterable[dict[str, Any]]) -> list[tuple[str, str]]:
    """(where, JSON) of each AuroraRestore's status and annotations."""
    return [
        (
            f"status of AuroraRestore {item['metadata']['namespace']}/{item['metadata']['name']}",
            json.dumps({"status": item.get("status"), "annotations": item["metadata"].get("annotations")},
                       ensure_ascii=False),
        )
        for item in restores
    ]


def current_restore_texts(api_client) -> list[tuple[str, str]]:
    """The AuroraRestores that still exist (namespaces without the namespace fixture keep theirs)."""
    items = client.CustomObjectsApi(api_client).list_cluster_custom_object(GROUP, VERSION, PLURAL)["items"]
    return restore_texts(items)


def event_texts(api_client) -> list[tuple[str, str]]:
    """(where, JSON) of every Event in every namespace: reason, message (`note` in events.k8s.io), annotations."""
    texts = []
    for event in client.CoreV1Api(api_client).list_event_for_all_namespaces().items:
        about = event.involved_object
        texts.append((
            f"Event {event.metadata.namespace}/{event.metadata.name} about {about.kind} {about.name}",
            json.dumps(api_client.sanitize_for_serialization(event), ensure_ascii=False),
        ))
    return texts


def simulator_texts(simulator, log_path: Path | None) -> list[tuple[str, str]]:
    """The simulator's request log (with each call's parameters), its own log, and the statement logs of the
    database servers still running (a deleted cluster's server and log are gone)."""
    texts = [("the simulator's request log", json.dumps(simulator.calls(), ensure_ascii=False))]
    if log_path is not None:
        texts.append(("the simulator's log", Path(log_path).read_text(errors="replace")))
    for server in simulator.databases()["databases"]:
        log = server.get("statement_log")
        if log and Path(log).exists():
            texts.append((f"statement log of {server['engine']} server of cluster {server['cluster']}",
                          Path(log).read_text(errors="replace")))
    return texts


def session_texts(session: SessionRecord) -> list[tuple[str, str]]:
    """What the fixtures kept: operator logs, /metrics and statuses."""
    logs = [(f"operator log of {test}", path.read_text(errors="replace"))
            for test, path in session.operator_logs if path.exists()]
    return logs + session.metrics + session.statuses


# -- one session's scan -------------------------------------------------------------------------------------


def scan_session(session: SessionRecord, api_client, simulator, simulator_log: Path | None,
                 operator_kubeconfig: Path) -> dict[str, Any]:
    """The secret scan of one e2e session (each pytest-xdist worker has its own): its figures and its hits, as
    plain data without a secret in it, so that the worker that runs the audits can judge every session."""
    from_stores = session.secrets + kubernetes_secret_values(api_client) + secrets_manager_values(
        simulator.base_url, secrets_manager_places(simulator.calls()))
    credentials = [
        *session.passwords,
        SecretValue(WEB_IDENTITY_TOKEN, "the operator's web identity token"),
        *kubeconfig_tokens(operator_kubeconfig),
    ]
    values = worth_scanning(from_stores + credentials)
    texts = [
        *session_texts(session),
        *current_restore_texts(api_client),
        *event_texts(api_client),
        *simulator_texts(simulator, simulator_log),
    ]
    return {
        "collected": len(worth_scanning(from_stores)),
        # A restore that had RDS manage its master password: the collector must have found that secret.
        "managed_expected": any((json.loads(text)["status"] or {}).get("masterUserSecretArn")
                                for _, text in session.statuses),
        # Counted before worth_scanning: a connection Secret may hold the same value.
        "managed": sum(s.origin.startswith("Secrets Manager secret") and "/rds!cluster-" in s.origin
                       for s in from_stores),
        "metrics": len(session.metrics),
        "metrics_unreachable": session.metrics_unreachable,
        "statement_logs": sum(where.startswith("statement log of ") for where, _ in texts),
        "hits": [str(hit) for hit in scan(texts, values)],
    }


# -- the scanner --------------------------------------------------------------------------------------------


def embedded_base64(raw: bytes, offset: int) -> str:
    """The characters of `raw`'s base64 that do not depend on its neighbours when it sits at `offset` (mod 3)
    bytes into a larger encoded blob: the first characters also carry the preceding bytes, the last ones the
    following bytes."""
    encoded = base64.b64encode(b"\0" * offset + raw).decode()
    first = -(-8 * offset // 6)
    last = 8 * (offset + len(raw)) // 6
    return encoded[first:last]


def encoded_forms(value: str) -> dict[str, str]:
    """How `value` can look in a log, event, status or request: name of the form -> text. Forms that come out
    identical (a value without special characters is its own URL encoding) appear once, under the first name."""
    raw = value.encode()
    standard = base64.b64encode(raw).decode()
    forms = {
        "raw": value,
        "URL-encoded": urllib.parse.quote(value, safe=""),
        "URL-encoded (slashes kept)": urllib.parse.quote(value),
        "form-encoded": urllib.parse.quote_plus(value),
        "JSON-escaped": json.dumps(value)[1:-1],
        "JSON-escaped (non-ASCII kept)": json.dumps(value, ensure_ascii=False)[1:-1],
        "base64": standard,
        "base64 without padding": standard.rstrip("="),
        "urlsafe base64": standard.translate(_URLSAFE),
        "urlsafe base64 without padding": standard.rstrip("=").translate(_URLSAFE),
    }
    for offset in range(3):
        core = embedded_base64(raw, offset)
        forms[f"base64 inside a blob (offset {offset})"] = core
        forms[f"urlsafe base64 inside a blob (offset {offset})"] = core.translate(_URLSAFE)
    distinct: dict[str, str] = {}
    for name, text in forms.items():
        if text not in distinct.values():
            distinct[name] = text
    return distinct


def scan(texts: Iterable[tuple[str, str]], secrets: Iterable[SecretValue]) -> list[Hit]:
    """Every (text, secret) pair where the text contains one of the secret's forms: the first form found."""
    encodings = [(secret, encoded_forms(secret.value)) for secret in secrets]
    every_form = [text for _, forms in encodings for text in forms.values()]
    hits = []
    for where, text in texts:
        for secret, forms in encodings:
            for form, encoded in forms.items():
                start = text.find(encoded)
                if start >= 0:
                    excerpt = redacted_excerpt(text, start, start + len(encoded), every_form)
                    hits.append(Hit(where, form, secret.origin, excerpt))
                    break
    return hits


def redacted_excerpt(text: str, start: int, end: int, every_form: list[str]) -> str:
    """The text around a hit with the hit, and any other secret near it, replaced by REDACTED."""
    margin = EXCERPT_CONTEXT + 2 * max(map(len, every_form))
    before, after = text[max(0, start - margin):start], text[end:end + margin]
    for form in sorted(every_form, key=len, reverse=True):
        before, after = before.replace(form, REDACTED), after.replace(form, REDACTED)
    return (before[-EXCERPT_CONTEXT:] + REDACTED + after[:EXCERPT_CONTEXT]).replace("\n", "\\n")

"""No secret value the e2e session used shows anywhere it wrote: operator logs, Events, statuses, /metrics, the
simulator's request log and log, the database servers' statement logs — raw, URL-encoded, JSON-escaped or
base64-encoded. The scanner itself is tested first, on planted passwords: a scan that cannot fail proves nothing.
"""

import base64
import json
import secrets
import urllib.parse
from datetime import datetime, timezone

import pytest
from kubernetes import client
from secret_scan import (
    REDACTED,
    SESSION,
    SecretValue,
    embedded_base64,
    encoded_forms,
    event_texts,
    kubernetes_secret_values,
    restore_texts,
    scan,
    scan_session,
    secrets_manager_places,
    secrets_manager_values,
    worth_scanning,
)

from aurora_restore.api import GROUP, PLURAL, VERSION
from restores import create_restore

MINIMUM_E2E_TESTS = 20  # below this the session did not run the whole suite (e.g. a few files or `-k`)
# Distinct values in Secrets and Secrets Manager: test_database_access and this file alone leave 8 (the tests
# share their passwords, and each value counts once); fewer means the collector missed a source.
MINIMUM_SECRET_VALUES = 6


def planted_password() -> str:
    """A password unique to this test, with the characters that make every form differ: '/', '+', space, '"',
    non-ASCII, and '?'s, whose base64 ("Pz8/") has a '/' at every alignment."""
    return f'Pl4nted/{secrets.token_hex(6)} +"wörd??????'


def test_every_form_of_a_planted_password_is_found_and_named():
    password = planted_password()
    forms = encoded_forms(password)
    assert len(forms) == 16, sorted(forms)  # no two forms alike, so each can be found under its own name
    for form, encoded in forms.items():
        hits = scan([("fake log", f"2026-01-01 INFO restore ok; data={encoded}; next line\n")],
                    [SecretValue(password, "the planted password")])
        assert [(hit.where, hit.form, hit.origin) for hit in hits] == [("fake log", form, "the planted password")]


@pytest.mark.parametrize("prefix_length", range(6))
def test_a_password_inside_a_larger_base64_blob_is_found(prefix_length):
    password = planted_password()
    blob = base64.b64encode(secrets.token_bytes(prefix_length) + password.encode() + secrets.token_bytes(7))
    for text in (blob.decode(), base64.urlsafe_b64encode(base64.b64decode(blob)).decode()):
        hits = scan([("a Secret-like blob", f'{{"data": "{text}"}}')], [SecretValue(password, "planted")])
        expected = {f"base64 inside a blob (offset {prefix_length % 3})",
                    f"urlsafe base64 inside a blob (offset {prefix_length % 3})"}
        if prefix_length % 3 == 0:  # aligned: the unpadded form is in the blob too when the random byte after
            # the password happens to complete its last character (the scanner reports the first form it tries)
            expected |= {"base64 without padding", "urlsafe base64 without padding"}
        assert len(hits) == 1 and hits[0].form in expected, hits
    assert embedded_base64(password.encode(), 0) in base64.b64encode(password.encode()).decode()


def test_a_password_inside_a_connection_uri_and_a_json_document_is_found():
    password = planted_password()
    texts = [
        ("uri", f"postgresql://admin:{urllib.parse.quote(password, safe='')}@db.example:5432/orders"),
        ("json", json.dumps({"message": f"connecting with {password}"})),
    ]
    hits = scan(texts, [SecretValue(password, "planted")])
    assert [(hit.where, hit.form) for hit in hits] == [("uri", "URL-encoded"), ("json", "JSON-escaped")]


def test_clean_text_and_near_misses_pass():
    password = planted_password()
    near_misses = "\n".join([
        password[:-1] + "x",  # one character off
        password[: len(password) // 2],  # half of it
        base64.b64encode((password[:-1] + "x").encode()).decode(),
        "2026-01-01 INFO [t-1/orders] Verifying -> CleaningUp: verified",
    ])
    assert scan([("operator log", near_misses)], [SecretValue(password, "planted")]) == []


def test_excerpts_show_neither_the_hit_nor_a_secret_next_to_it():
    first, second = planted_password(), planted_password()
    text = f"login as admin with {first} then {base64.b64encode(second.encode()).decode()} done"
    hits = scan([("log", text)], [SecretValue(first, "first"), SecretValue(second, "second")])
    assert [hit.origin for hit in hits] == ["first", "second"]
    for hit in hits:
        shown = str(hit)
        assert hit.excerpt.count(REDACTED) == 2 and "login as admin with" in hit.excerpt
        assert not any(form in shown for secret in (first, second) for form in encoded_forms(secret).values())


def test_values_shorter_than_eight_characters_are_not_scanned_and_duplicates_once():
    values = [SecretValue("stale", "short"), SecretValue("exactly8", "first"), SecretValue("exactly8", "again")]
    assert worth_scanning(values) == [SecretValue("exactly8", "first")]


def test_a_password_planted_in_an_event_is_found(api_client, namespace):
    password = planted_password()
    now = datetime.now(timezone.utc)
    client.CoreV1Api(api_client).create_namespaced_event(namespace, client.CoreV1Event(
        metadata=client.V1ObjectMeta(
            name="planted", annotations={"note": base64.b64encode(password.encode()).decode()}),
        involved_object=client.V1ObjectReference(kind="AuroraRestore", name="planted", namespace=namespace),
        reason="Planted", message=f"restore failed: password {urllib.parse.quote_plus(password)} refused",
        type="Warning", first_timestamp=now, last_timestamp=now, count=1,
    ))
    texts = [text for text in event_texts(api_client) if text[0].startswith(f"Event {namespace}/planted ")]
    hits = scan(texts, [SecretValue(password, "planted"), SecretValue(planted_password(), "never used")])
    assert sorted((hit.where, hit.form, hit.origin) for hit in hits) == [
        (f"Event {namespace}/planted about AuroraRestore planted", "form-encoded", "planted")]
    only_base64 = [(where, text.replace(urllib.parse.quote_plus(password), "")) for where, text in texts]
    assert [hit.form for hit in scan(only_base64, [SecretValue(password, "planted")])] == ["base64"]


def test_a_password_in_a_restore_status_is_found_after_the_restore_is_gone(api_client, namespace):
    password = planted_password()
    create_restore(api_client, namespace, "planted", {
        "source": {"region": "us-east-1", "snapshotIdentifier": "snap-planted"},
        "target": {"clusterIdentifier": "tgt-planted"},
    })
    objects = client.CustomObjectsApi(api_client)
    objects.patch_namespaced_custom_object_status(GROUP, VERSION, namespace, PLURAL, "planted", {
        "status": {"phase": "Failed", "message": f"could not log in with {password}"}})
    objects.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "planted", {
        "metadata": {"annotations": {"example.com/debug": base64.b64encode(password.encode()).decode()}}})
    # What the namespace fixture's teardown keeps in SESSION before it deletes the restore:
    texts = restore_texts(objects.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)["items"])
    objects.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "planted")
    assert [hit.where for hit in scan(texts, [SecretValue(password, "planted")])] == [
        f"status of AuroraRestore {namespace}/planted"]
    in_json = json.dumps(password, ensure_ascii=False)[1:-1]  # the status message, as restore_texts writes it
    without_message = [(where, text.replace(in_json, "")) for where, text in texts]
    assert [hit.form for hit in scan(without_message, [SecretValue(password, "planted")])] == ["base64"]


def test_the_collector_takes_passwords_and_leaves_connection_details(api_client, namespace, aws, simulator):
    password, token, plain, json_password = (f"collected-{secrets.token_urlsafe(16)}" for _ in range(4))
    client.CoreV1Api(api_client).create_namespaced_secret(namespace, client.V1Secret(
        metadata=client.V1ObjectMeta(name="orders-db"),
        string_data={"password": password, "webhook": token, "host": "db.example.internal", "port": "5432",
                     "username": "admin_user", "uri": f"postgresql://admin_user:{password}@db.example.internal/x",
                     "short": "x"}))
    secrets_manager = aws.client("secretsmanager", region_name="us-west-2")
    secrets_manager.create_secret(Name=f"plain-{namespace}", SecretString=plain)
    secrets_manager.create_secret(Name=f"json-{namespace}", SecretString=json.dumps(
        {"username": "admin_user", "password": json_password, "host": "db.example.internal", "port": 5432}))

    # Compared by name, so that a failure shows which value went where, not the values.
    names = {password: "password", token: "token", "x": "x", plain: "plain", json_password: "json password"}
    from_kubernetes = {s.origin: names.get(s.value, "another value") for s in kubernetes_secret_values(api_client)
                       if s.origin.startswith(f"Secret {namespace}/")}
    assert from_kubernetes == {f"Secret {namespace}/orders-db[password]": "password",
                               f"Secret {namespace}/orders-db[webhook]": "token",
                               f"Secret {namespace}/orders-db[short]": "x"}
    places = secrets_manager_places(simulator.calls())
    assert ("123456789012", "us-west-2") in places
    from_secrets_manager = {s.origin: names.get(s.value, "another value")
                            for s in secrets_manager_values(simulator.base_url, places) if namespace in s.origin}
    assert from_secrets_manager == {
        f"Secrets Manager secret 123456789012/us-west-2/plain-{namespace}": "plain",
        f"Secrets Manager secret 123456789012/us-west-2/json-{namespace} (password)": "json password",
    }


@pytest.mark.after_all_e2e
def test_no_secret_value_shows_anywhere_the_session_wrote(api_client, simulator, simulator_process, request,
                                                           other_workers_usage):
    # This session's scan, and those of the other pytest-xdist workers' sessions (each scanned itself at its end).
    scans = [(f"worker {usage['worker']}", usage["secret_scan"]) for usage in other_workers_usage
             if usage["secret_scan"] is not None]
    if SESSION.operator_logs:
        scans.insert(0, ("this session", scan_session(SESSION, api_client, simulator, simulator_process.log_path,
                                                      request.getfixturevalue("operator_kubeconfig"))))
    if not scans:
        pytest.skip("no e2e test of this session ran an operator")
    whole_suite = request.session.testscollected >= MINIMUM_E2E_TESTS
    # Figures first, so that a failing assertion shows numbers, not values.
    if whole_suite:
        assert sum(figures["collected"] for _, figures in scans) >= MINIMUM_SECRET_VALUES, (
            "the collector found too few secret values")
    for session, figures in scans:
        if figures["managed_expected"]:
            assert figures["managed"] >= 1, f"{session}: no RDS-managed master secret collected"
        assert figures["metrics"], (
            f"{session}: no operator answered /metrics at its teardown: {figures['metrics_unreachable']}")
    if whole_suite:
        assert any(figures["statement_logs"] for _, figures in scans), "no statement log to scan"
    hits = [f"{session}: {hit}" for session, figures in scans for hit in figures["hits"]]
    assert hits == [], f"{len(hits)} secret values found where none may be:\n" + "\n".join(hits)

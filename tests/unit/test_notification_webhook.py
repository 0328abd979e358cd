"""The webhook sender connects to the checked address, names the host in the Host header, follows no redirect
and signs the body when a key is set (notify/webhook.py, notify/notifier.py)."""

import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from aurora_restore.api.phase import Phase
from aurora_restore.notify.url_guard import WebhookTarget
from aurora_restore.notify.webhook import WebhookFailed, post_json


@pytest.fixture
def receiver():
    """A local server answering each POST with the next status of `answers` (200 when none is left)."""
    seen: list[dict] = []
    answers: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            seen.append({"path": self.path, "headers": dict(self.headers), "body": body})
            self.send_response(answers.pop(0) if answers else 200)
            self.send_header("Location", "http://169.254.169.254/")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_port, seen, answers
    server.shutdown()
    server.server_close()


def target(port: int) -> WebhookTarget:
    # The checked address is the local server; the name is what the Host header must say.
    return WebhookTarget(scheme="http", host="hooks.example.com", port=port, path="/services/x?a=1",
                         address="127.0.0.1")


def test_the_request_goes_to_the_checked_address_with_the_name_as_host(receiver):
    port, seen, _ = receiver
    assert post_json(target(port), b'{"a": 1}', {"X-Test": "1"}, timeout=5) == 200
    [request] = seen
    assert request["path"] == "/services/x?a=1" and request["body"] == b'{"a": 1}'
    assert request["headers"]["Host"] == f"hooks.example.com:{port}"
    assert request["headers"]["Content-Type"] == "application/json" and request["headers"]["X-Test"] == "1"


@pytest.mark.parametrize("status, words", [(500, "HTTP 500"), (302, "redirects are not followed"), (404, "HTTP 404")])
def test_anything_but_2xx_fails_without_following(receiver, status, words):
    port, seen, answers = receiver
    answers.append(status)
    with pytest.raises(WebhookFailed) as failed:
        post_json(target(port), b"{}", {}, timeout=5)
    assert words in str(failed.value) and len(seen) == 1
    assert "hooks.example.com" not in str(failed.value) and "/services" not in str(failed.value)


def test_a_closed_port_fails_naming_no_url():
    with pytest.raises(WebhookFailed) as failed:
        post_json(target(1), b"{}", {}, timeout=2)
    assert "request failed" in str(failed.value) and "example" not in str(failed.value)


def test_the_body_is_signed_with_the_key(restore):
    from aurora_restore.notify.notifier import SIGNATURE_HEADER, NotificationSettings, Notifier

    from .test_notifications import ALLOWING, Events

    sent = []

    def post(checked, body, headers, timeout):
        sent.append((body, headers))
        return 200

    run = restore({"notification": {"webhookSecretRef": {"name": "hook"}}, "dryRun": True},
                  policies={"allowing": ALLOWING})
    run.secrets.add("hook", {"url": "https://hooks.example.com/x"})
    notifier = Notifier(NotificationSettings(signing_key="k" * 32), Events(), post, lambda host, port: ["203.0.113.9"])
    ctx = run.context()
    [entry] = notifier.queue(ctx, Phase.PLANNED)
    assert notifier.attempt(ctx, entry).state == "Delivered"
    [(body, headers)] = sent
    assert json.loads(body)["phase"] == "Planned"
    expected = hmac.new(b"k" * 32, body, hashlib.sha256).hexdigest()
    assert headers[SIGNATURE_HEADER] == f"sha256={expected}"


def test_a_path_http_client_refuses_is_a_failed_attempt_naming_no_url(receiver):
    port, seen, _ = receiver
    checked = WebhookTarget(scheme="http", host="hooks.example.com", port=port, path="/caf\u00e9-s3cr3t",
                            address="127.0.0.1")
    with pytest.raises(WebhookFailed) as failed:
        post_json(checked, b"{}", {}, timeout=5)
    assert "UnicodeEncodeError" in str(failed.value) and "s3cr3t" not in str(failed.value) and seen == []

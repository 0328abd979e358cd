"""POST a notification to a checked webhook target (url_guard.py), connecting to the checked address only.

The socket goes to `target.address`; the Host header and TLS SNI (and certificate check) use the name, so what
was checked is what is reached. Redirects are not followed (a 3xx is a failed attempt), the timeout is short,
and nothing about the URL appears in what is raised.
"""

import http.client
import socket
import ssl

from .url_guard import WebhookTarget


class WebhookFailed(Exception):
    """The attempt failed: the message says how (status code or error type), never the URL."""


def post_json(target: WebhookTarget, body: bytes, headers: dict[str, str], timeout: float) -> int:
    """POST `body` as application/json; returns the 2xx status, raises WebhookFailed otherwise."""
    try:
        sock = socket.create_connection((target.address, target.port), timeout=timeout)
        if target.scheme == "https":
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=target.host)
        connection_class = http.client.HTTPSConnection if target.scheme == "https" else http.client.HTTPConnection
        connection = connection_class(target.host, target.port, timeout=timeout)
        connection.sock = sock  # already connected to the checked address: http.client does not connect again
        try:
            connection.request("POST", target.path, body=body, headers={
                "Content-Type": "application/json", "User-Agent": "aurora-restore-operator", **headers})
            response = connection.getresponse()
            response.read(65536)
            status = response.status
        finally:
            connection.close()
    except ssl.SSLError as error:
        raise WebhookFailed(f"TLS failed ({type(error).__name__}: {error.reason or 'handshake'})") from None
    except (OSError, http.client.HTTPException, ValueError) as error:  # ValueError, UnicodeError: a refused path
        raise WebhookFailed(f"the request failed ({type(error).__name__})") from None
    if not 200 <= status < 300:
        raise WebhookFailed(f"it answered HTTP {status}" + (" (redirects are not followed)"
                                                           if 300 <= status < 400 else ""))
    return status

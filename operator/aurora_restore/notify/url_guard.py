"""Which webhook URLs the operator may POST to, and the one address it then connects to.

A webhook URL comes from a tenant's Secret, so it must not reach what only the operator's pod can reach: the
loopback, link-local addresses and the instance metadata service (169.254.169.254, fd00:ec2::254) above all. The
host is checked as written (an IP literal in any spelling the resolver accepts: 2130706433, 0x7f.1, 017700000001)
and every address it resolves to; the connection then goes to a checked address (webhook.py), with the name in
the Host header and TLS SNI, so a second DNS answer (rebinding) cannot swap it. Errors never repeat the URL: it
is secret (it often embeds a token).
"""

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

# The EC2 instance metadata service over IPv4 and IPv6 (also inside the link-local and unique-local ranges).
METADATA_ADDRESSES = frozenset({ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")})

# "This network" (RFC 791): 0.0.0.0/8 reaches the local host on Linux, like 0.0.0.0 itself.
THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")
# IPv6 ranges whose last 32 bits are an IPv4 address: NAT64's well-known prefix (RFC 6052), IPv4-compatible.
NAT64 = ipaddress.ip_network("64:ff9b::/96")
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")

Resolver = Callable[[str, int], list[str]]


class UnsafeUrl(ValueError):
    """The URL may not be used; the message says why without repeating the URL."""


class HostUnresolved(UnsafeUrl):
    """The host did not resolve now: DNS may answer later, so the attempt is retried (not a refusal)."""


@dataclass(frozen=True)
class WebhookTarget:
    """A checked URL: connect to `address` (checked), say `host` in the Host header and SNI."""

    scheme: str
    host: str
    port: int
    path: str = field(repr=False)  # path and query, as sent in the request line: it may hold a token
    address: str


def resolve(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for `host` (what a connection could reach)."""
    try:
        answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise HostUnresolved(f"its host does not resolve ({type(error).__name__})") from None
    return sorted({answer[4][0] for answer in answers})


def forbidden(address: str) -> str | None:
    """Why the operator may not connect to `address`, or None. IPv6 addresses that carry an IPv4 address
    (IPv4-mapped ::ffff:0:0/96, IPv4-compatible ::/96, NAT64 64:ff9b::/96, 6to4 2002::/16) are judged by the IPv4
    address inside them, with the same rules. Private ranges (10/8, 192.168/16, fc00::/7) are allowed: webhooks
    inside the VPC are legitimate, and the policy's webhookHosts narrow where a namespace may send."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        ip = embedded_ipv4(ip) or ip
    if ip in METADATA_ADDRESSES:
        return "it is the instance metadata service"
    if ip.is_loopback:
        return "it is a loopback address"
    if ip.is_link_local:
        return "it is a link-local address"
    if ip.is_unspecified:
        return "it is the unspecified address"
    if ip in THIS_NETWORK:
        return "it is in 0.0.0.0/8 (this host on this network)"
    if ip.is_multicast:
        return "it is a multicast address"
    if isinstance(ip, ipaddress.IPv4Address) and (ip.is_reserved or ip == ipaddress.ip_address("255.255.255.255")):
        return "it is a reserved address"
    return None


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address reaches, when it carries one: IPv4-mapped, 6to4, NAT64 (the last 32 bits
    of 64:ff9b::/96) and IPv4-compatible (::a.b.c.d, deprecated, but still routed by some stacks). :: and ::1
    are themselves, not 0.0.0.0 and 0.0.0.1."""
    if ip.ipv4_mapped or ip.sixtofour:
        return ip.ipv4_mapped or ip.sixtofour
    if ip in NAT64 or (ip in IPV4_COMPATIBLE and int(ip) > 1):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def literal_address(host: str) -> str | None:
    """The address a host written as an IP literal stands for, in any form the C resolver accepts (inet_aton:
    decimal 2130706433, hex 0x7f000001, octal 0177.0.0.1, short 127.1), or None for a name."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    try:
        return socket.inet_ntoa(socket.inet_aton(host))
    except (OSError, UnicodeError, ValueError):
        return None


def check_url(url: str, allow_http: bool = False, resolver: Resolver = resolve) -> WebhookTarget:
    """The target to POST `url` to; raises UnsafeUrl. https only, unless `allow_http`
    (AURORA_RESTORE_NOTIFICATION_ALLOW_HTTP); no user info; every address of the host allowed."""
    if not isinstance(url, str) or not url.strip() or any(ord(c) < 0x21 or ord(c) == 0x7F for c in url.strip()):
        raise UnsafeUrl("it is empty or has spaces or control characters")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
        host = parts.hostname
    except ValueError:
        raise UnsafeUrl("it is not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise UnsafeUrl("its scheme is not https")
    if scheme == "http" and not allow_http:
        raise UnsafeUrl("its scheme is http, and only https is allowed (AURORA_RESTORE_NOTIFICATION_ALLOW_HTTP)")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise UnsafeUrl("it carries user info (user@host)")
    if not host:
        raise UnsafeUrl("it has no host")
    if port is None:
        port = 443 if scheme == "https" else 80
    if port == 0:
        raise UnsafeUrl("its port is 0")
    literal = literal_address(host)
    addresses = [literal] if literal else resolver(host, port)
    if not addresses:
        raise HostUnresolved("its host does not resolve")
    for address in addresses:
        why = forbidden(address)
        if why is not None:
            where = "its host" if literal else "its host resolves to an address that"
            raise UnsafeUrl(f"{where} is not allowed: {why}")
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return WebhookTarget(scheme=scheme, host=host, port=port, path=path, address=addresses[0])


def host_of(url: str) -> str | None:
    """The host of `url` in lower case (what the policy's webhookHosts globs match), or None if it has none."""
    try:
        return (urlsplit(url.strip()).hostname or None) if isinstance(url, str) else None
    except ValueError:
        return None

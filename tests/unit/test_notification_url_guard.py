"""The webhook URL checker (notify/url_guard.py) against the hostile spellings of forbidden addresses."""

import pytest

from aurora_restore.notify.url_guard import HostUnresolved, UnsafeUrl, check_url, forbidden, host_of


def resolving(mapping: dict[str, list[str]]):
    """A resolver answering from `mapping` (a name absent from it does not resolve)."""

    def resolve(host: str, port: int) -> list[str]:
        if host not in mapping:
            raise HostUnresolved("its host does not resolve (gaierror)")
        return mapping[host]

    return resolve


PUBLIC = resolving({"hooks.example.com": ["203.0.113.10"], "localhost": ["127.0.0.1", "::1"],
                    "rebind.example.com": ["203.0.113.10", "127.0.0.1"], "metadata.example.com": ["169.254.169.254"],
                    "v6meta.example.com": ["fd00:ec2::254"], "internal.example.com": ["10.1.2.3"]})

REFUSED = [
    "https://127.0.0.1/hook",
    "https://127.1/hook",  # inet_aton's short form
    "https://2130706433/hook",  # decimal
    "https://0x7f000001/hook",  # hex
    "https://0x7f.0.0.1/hook",
    "https://017700000001/hook",  # octal
    "https://0177.0.0.1/hook",
    "https://0/hook",  # 0.0.0.0
    "https://0.0.0.0/hook",
    "https://[::1]/hook",
    "https://[::]/hook",
    "https://[::ffff:127.0.0.1]/hook",  # IPv4-mapped IPv6
    "https://[::ffff:7f00:1]/hook",
    "https://[::ffff:169.254.169.254]/latest/meta-data",
    "https://[2002:7f00:1::]/hook",  # 6to4 of 127.0.0.1
    "https://169.254.169.254/latest/meta-data/",
    "https://0.1.2.3/hook",  # 0.0.0.0/8 reaches this host
    "https://[::127.0.0.1]/hook",  # IPv4-compatible IPv6
    "https://[::169.254.169.254]/latest/meta-data/",
    "https://[::a9fe:a9fe]/latest/meta-data/",
    "https://[64:ff9b::127.0.0.1]/hook",  # NAT64 of 127.0.0.1
    "https://[64:ff9b::a9fe:a9fe]/latest/meta-data/",  # NAT64 of the metadata service
    "https://169.254.1.1/hook",  # link-local
    "https://[fe80::1]/hook",
    "https://[fe80::1%25eth0]/hook",
    "https://[fd00:ec2::254]/latest/meta-data/",
    "https://224.0.0.1/hook",  # multicast
    "https://[ff02::1]/hook",
    "https://255.255.255.255/hook",
    "https://localhost/hook",  # a name resolving to loopback
    "https://LOCALHOST:8443/hook",
    "https://rebind.example.com/hook",  # one of its addresses is loopback
    "https://metadata.example.com/hook",
    "https://v6meta.example.com/hook",
    "https://good@127.0.0.1/hook",  # user info
    "https://hooks.example.com@127.0.0.1/hook",
    "https://user:pass@hooks.example.com/hook",
    "https://hooks.example.com:0/hook",
    "https://hooks.example.com:99999/hook",
    "http://hooks.example.com/hook",  # http without the setting
    "ftp://hooks.example.com/hook",
    "file:///etc/passwd",
    "gopher://hooks.example.com/",
    "https:///hook",
    "https://unknown.invalid/hook",
    "https://hooks.example.com/ hook",
    "https://hooks.example.com/\r\nX: y",
    "",
    "   ",
]


@pytest.mark.parametrize("url", REFUSED)
def test_hostile_urls_are_refused_without_repeating_them(url):
    with pytest.raises(UnsafeUrl) as refused:
        check_url(url, resolver=PUBLIC)
    message = str(refused.value)
    assert message
    if url.strip():
        assert url.strip() not in message
    for part in ("127.0.0.1", "hooks.example.com", "169.254", "good@", "pass"):
        assert part not in message


def test_a_public_https_url_is_allowed_and_pinned_to_the_checked_address():
    target = check_url("https://Hooks.Example.com/services/T0/B0/xyz?a=1", resolver=PUBLIC)
    assert (target.scheme, target.host, target.port, target.path, target.address) == (
        "https", "hooks.example.com", 443, "/services/T0/B0/xyz?a=1", "203.0.113.10")


def test_http_only_with_the_setting_and_private_addresses_are_allowed():
    target = check_url("http://internal.example.com:8080/hook", allow_http=True, resolver=PUBLIC)
    assert (target.scheme, target.port, target.address) == ("http", 8080, "10.1.2.3")
    assert check_url("http://10.0.0.5/x", allow_http=True, resolver=PUBLIC).address == "10.0.0.5"
    with pytest.raises(UnsafeUrl):
        check_url("http://127.0.0.1/x", allow_http=True, resolver=PUBLIC)


def test_addresses_are_judged_by_what_they_reach():
    assert forbidden("127.0.0.2") and forbidden("::1") and forbidden("::ffff:127.0.0.1")
    assert forbidden("169.254.169.254") == "it is the instance metadata service"
    assert forbidden("fd00:ec2::254") == "it is the instance metadata service"
    assert forbidden("203.0.113.10") is None and forbidden("2001:db8::1") is None


def test_the_host_the_policy_matches_is_the_lower_case_name():
    assert host_of("https://Hooks.Example.com:8443/x") == "hooks.example.com"
    assert host_of("https://[::1]/x") == "::1"
    assert host_of("not a url") is None


def test_ipv6_addresses_carrying_an_ipv4_address_are_judged_by_it():
    assert forbidden("0.0.0.1") and forbidden("0.255.255.255") and forbidden("::2")
    assert forbidden("::127.0.0.1") == "it is a loopback address"
    assert forbidden("64:ff9b::169.254.169.254") == "it is the instance metadata service"
    assert forbidden("64:ff9b::169.254.1.1") == "it is a link-local address"
    assert forbidden("64:ff9b::203.0.113.10") is None and forbidden("::203.0.113.10") is None
    assert forbidden("::1") == "it is a loopback address" and forbidden("::") == "it is the unspecified address"


def test_a_host_that_does_not_resolve_is_told_apart_from_a_forbidden_one():
    with pytest.raises(HostUnresolved):
        check_url("https://unknown.invalid/hook", resolver=PUBLIC)
    with pytest.raises(UnsafeUrl) as refused:
        check_url("https://localhost/hook", resolver=PUBLIC)
    assert not isinstance(refused.value, HostUnresolved)

"""hookline.netguard pure functions: forbidden_reason for every range, check_url for every notation.

Nothing here opens a socket: these are pure functions.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, ip_address

import pytest

from hookline.exceptions import TargetRefusedError
from hookline.netguard import check_address, check_url, forbidden_reason, parse_ip_literal

FORBIDDEN: list[tuple[str, str]] = [
    # IPv4
    ("0.0.0.0", "unspecified"),
    ("0.1.2.3", "this_network"),
    ("0.255.255.255", "this_network"),
    ("10.0.0.1", "private"),
    ("10.255.255.255", "private"),
    ("100.64.0.1", "cgnat"),
    ("100.100.100.200", "cgnat"),  # Alibaba Cloud's metadata service
    ("100.127.255.254", "cgnat"),
    ("127.0.0.1", "loopback"),
    ("127.255.255.254", "loopback"),
    ("169.254.169.254", "link_local"),  # EC2 / Lambda metadata and credentials
    ("169.254.170.2", "link_local"),  # ECS task credentials
    ("169.254.0.1", "link_local"),
    ("172.16.0.1", "private"),
    ("172.31.255.255", "private"),
    ("192.0.0.8", "reserved"),
    ("192.0.0.170", "reserved"),
    ("192.0.2.1", "documentation"),
    ("192.88.99.1", "reserved"),
    ("192.168.0.1", "private"),
    ("192.168.255.255", "private"),
    ("198.18.0.1", "benchmark"),
    ("198.19.255.255", "benchmark"),
    ("198.51.100.7", "documentation"),
    ("203.0.113.9", "documentation"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.254", "reserved"),
    ("255.255.255.255", "broadcast"),
    # IPv6
    ("::", "unspecified"),
    ("::1", "loopback"),
    ("::127.0.0.1", "reserved"),  # deprecated IPv4-compatible
    ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped: named after the embedded address...
    ("::ffff:10.0.0.1", "private"),
    ("::ffff:169.254.169.254", "link_local"),
    ("::ffff:8.8.8.8", "ipv4_mapped"),  # ...and refused even when that one is public
    ("::ffff:0:127.0.0.1", "loopback"),  # SIIT IPv4-translated
    ("::ffff:0:8.8.8.8", "ipv4_translated"),
    ("64:ff9b::a9fe:a9fe", "link_local"),  # NAT64 of 169.254.169.254
    ("64:ff9b::7f00:1", "loopback"),
    ("64:ff9b::808:808", "nat64"),
    ("64:ff9b:1::808:808", "nat64"),
    ("2002:7f00:1::", "loopback"),  # 6to4 of 127.0.0.1
    ("2002:a9fe:a9fe::1", "link_local"),
    ("2002:808:808::1", "6to4"),
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "documentation"),  # Teredo, client 192.0.2.45 (RFC 4380 example)
    ("2001:0:4136:e378:8000:63bf:f7f7:f7f7", "teredo"),  # Teredo, client 8.8.8.8
    ("100::1", "reserved"),
    ("2001:2::1", "benchmark"),
    ("2001:10::1", "reserved"),
    ("2001:20::1", "reserved"),
    ("2001:5::1", "reserved"),  # IETF protocol assignments 2001::/23, caught by the is_global backstop
    ("2001:db8::1", "documentation"),
    ("3fff::1", "documentation"),
    ("5f00::1", "reserved"),
    ("fc00::1", "private"),
    ("fd00:ec2::254", "private"),  # EC2 metadata over IPv6
    ("fdff:ffff::1", "private"),
    ("fe80::1", "link_local"),
    ("fe80::1%eth0", "link_local"),
    ("febf::1", "link_local"),
    ("fec0::1", "site_local"),
    ("feff::1", "site_local"),
    ("ff02::1", "multicast"),
    ("ff0e::1", "multicast"),
    ("4000::1", "reserved"),  # outside 2000::/3 global unicast
    ("1::1", "reserved"),
]

PUBLIC = [
    "1.1.1.1",
    "8.8.8.8",
    "9.255.255.255",
    "11.0.0.1",
    "93.184.216.34",
    "100.63.255.255",
    "100.128.0.0",
    "169.253.255.255",
    "169.255.0.1",
    "172.15.255.255",
    "172.32.0.0",
    "192.0.1.1",
    "192.167.255.255",
    "192.169.0.0",
    "198.17.255.255",
    "198.20.0.0",
    "223.255.255.255",
    "2606:4700:4700::1111",
    "2001:4860:4860::8888",
    "2a00:1450:4001::200e",
    "2001:3::1",  # AMT: 2001::/23 but not Teredo
]


@pytest.mark.parametrize(("address", "reason"), FORBIDDEN)
def test_forbidden_ranges(address: str, reason: str) -> None:
    assert forbidden_reason(ip_address(address)) == reason


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address: str) -> None:
    assert forbidden_reason(ip_address(address)) is None
    check_address(ip_address(address), allow_private=False)


@pytest.mark.parametrize(("address", "reason"), FORBIDDEN)
def test_allow_private_opens_only_plain_loopback(address: str, reason: str) -> None:
    ip = ip_address(address)
    opened = (isinstance(ip, IPv4Address) and ip.is_loopback) or address == "::1"
    if opened:
        check_address(ip, allow_private=True)
    else:
        with pytest.raises(TargetRefusedError) as caught:
            check_address(ip, allow_private=True)
        assert caught.value.reason == "private_address"
        assert caught.value.address_class == reason


def test_check_address_message_names_host_and_class() -> None:
    with pytest.raises(TargetRefusedError, match=r"rebind\.test \(169\.254\.169\.254\) is a link-local address"):
        check_address(IPv4Address("169.254.169.254"), allow_private=False, host="rebind.test")


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0X7F.1", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("0177.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("127.0.1", "127.0.0.1"),
        ("10.1", "10.0.0.1"),
        ("169.16689662", "169.254.169.254"),
        ("0xa9.0xfe.0xa9.0xfe", "169.254.169.254"),
        ("0251.0376.0251.0376", "169.254.169.254"),
        ("0", "0.0.0.0"),
        ("0x", "0.0.0.0"),
        ("1.1", "1.0.0.1"),
        ("127.0.0.1.", "127.0.0.1"),
        ("[::1]", "::1"),
        ("::ffff:7f00:1", "::ffff:127.0.0.1"),
        ("fe80::1%eth0", "fe80::1"),
        ("fe80::1%25eth0", "fe80::1"),
        ("[fe80::1%25en0]", "fe80::1"),
    ],
)
def test_parse_ip_literal_notations(host: str, expected: str) -> None:
    parsed = parse_ip_literal(host)
    assert parsed is not None
    # Compare without a zone id: "fe80::1%eth0" denotes fe80::1 for range checks.
    unscoped = IPv6Address(int(parsed)) if isinstance(parsed, IPv6Address) else parsed
    assert unscoped == ip_address(expected)


@pytest.mark.parametrize("host", ["example.com", "hooks.acme.io", "a1.b2", "xn--bcher-kva.de", "1.2.3.4.example"])
def test_parse_ip_literal_names(host: str) -> None:
    assert parse_ip_literal(host) is None


@pytest.mark.parametrize(
    "host", ["256.1.1.1", "1.2.3.08", "1.2.3.4.5", "4294967296", "1.16777216", "09", "1..1", "z::1"]
)
def test_parse_ip_literal_rejects_malformed(host: str) -> None:
    with pytest.raises(TargetRefusedError) as caught:
        parse_ip_literal(host)
    assert caught.value.reason == "invalid_host"


REFUSED_URLS: list[tuple[str, str, str | None]] = [
    ("http://127.0.0.1/", "private_address", "loopback"),
    ("http://127.0.0.1:8080/hook", "private_address", "loopback"),
    ("http://2130706433/", "private_address", "loopback"),
    ("http://0177.0.0.1/", "private_address", "loopback"),
    ("http://0x7f.1/", "private_address", "loopback"),
    ("http://0x7f000001/", "private_address", "loopback"),
    ("http://127.1/", "private_address", "loopback"),
    ("http://%31%32%37.0.0.1/", "private_address", "loopback"),
    ("http://localhost:3000/", "private_address", "loopback"),
    ("http://LOCALHOST./", "private_address", "loopback"),
    ("http://api.localhost/", "private_address", "loopback"),
    ("http://[::1]/", "private_address", "loopback"),
    ("http://[0:0:0:0:0:0:0:1]:8080/", "private_address", "loopback"),
    ("http://[::ffff:127.0.0.1]/", "private_address", "loopback"),
    ("http://[::ffff:7f00:1]/", "private_address", "loopback"),
    ("http://[::ffff:8.8.8.8]/", "private_address", "ipv4_mapped"),
    ("http://[fe80::1%25eth0]/", "private_address", "link_local"),
    ("http://169.254.169.254/latest/meta-data/", "private_address", "link_local"),
    ("http://0xa9.0xfe.0xa9.0xfe/", "private_address", "link_local"),
    ("http://0251.0376.0251.0376/", "private_address", "link_local"),
    ("http://169.16689662/", "private_address", "link_local"),
    ("http://[64:ff9b::a9fe:a9fe]/", "private_address", "link_local"),
    ("http://[2002:a9fe:a9fe::]/", "private_address", "link_local"),
    ("http://[fd00:ec2::254]/", "private_address", "private"),
    ("https://10.1/", "private_address", "private"),
    ("https://192.168.0.1./", "private_address", "private"),
    ("https://100.64.0.1/", "private_address", "cgnat"),
    ("https://0.0.0.0/", "private_address", "unspecified"),
    ("https://0/", "private_address", "unspecified"),
    ("https://224.0.0.1/", "private_address", "multicast"),
    ("https://[ff02::1]/", "private_address", "multicast"),
    ("https://255.255.255.255/", "private_address", "broadcast"),
    ("https://240.0.0.1/", "private_address", "reserved"),
    ("https://192.0.2.1/", "private_address", "documentation"),
    ("https://198.18.0.1/", "private_address", "benchmark"),
    ("https://[2001:0:4136:e378:8000:63bf:f7f7:f7f7]/", "private_address", "teredo"),
    ("https://[fec0::1]/", "private_address", "site_local"),
    ("ftp://example.com/", "scheme", None),
    ("file:///etc/passwd", "scheme", None),
    ("gopher://example.com/", "scheme", None),
    ("javascript:alert(1)", "scheme", None),
    ("example.com/hook", "scheme", None),
    ("https://user:pw@example.com/", "credentials", None),
    ("https://token@example.com/", "credentials", None),
    ("https://a@b@example.com/", "credentials", None),
    ("http:///path", "no_host", None),
    ("https://example.com:0/", "invalid_url", None),
    ("https://[zz::1]/", "invalid_url", None),
    ("https://256.1.1.1/", "invalid_host", None),
    ("https://1.2.3.08/", "invalid_host", None),
    ("https://1.2.3.4.5/", "invalid_host", None),
    ("https://exa\\mple.com/", "invalid_host", None),
    ("https://a..b/", "invalid_host", None),
    ("https://ex%61mple.com/", "invalid_host", None),
]


@pytest.mark.parametrize(("url", "reason", "address_class"), REFUSED_URLS)
def test_check_url_refuses(url: str, reason: str, address_class: str | None) -> None:
    with pytest.raises(TargetRefusedError) as caught:
        check_url(url, allow_private=False)
    assert caught.value.reason == reason
    assert caught.value.address_class == address_class
    assert isinstance(caught.value, ValueError)
    assert len(str(caught.value)) <= 300


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/x?y=1",
        "http://hooks.example.com/",
        "https://EXAMPLE.com:8443/path",
        "https://93.184.216.34/",
        "https://1.1/",
        "https://[2606:4700:4700::1111]/",
        "https://bücher.de/hook",
        "https://hooks.example.com./",
        "https://under_score.example.com/",
    ],
)
def test_check_url_allows_public(url: str) -> None:
    check_url(url, allow_private=False)
    check_url(url, allow_private=True)


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8080/", "http://127.9.9.9/", "http://0x7f.1/", "http://localhost/", "http://[::1]:9000/"],
)
def test_allow_private_opens_loopback(url: str) -> None:
    check_url(url, allow_private=True)


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1/",
        "http://169.254.169.254/",
        "http://[::ffff:127.0.0.1]/",
        "http://[fe80::1]/",
        "http://0.0.0.0/",  # on Linux, 0.0.0.0 reaches the local host: it must stay closed
        "http://[::]/",
        "http://100.64.0.1/",
        "https://user:pw@127.0.0.1/",
        "ftp://127.0.0.1/",
    ],
)
def test_allow_private_keeps_everything_else_closed(url: str) -> None:
    with pytest.raises(TargetRefusedError):
        check_url(url, allow_private=True)


def test_credentials_are_never_echoed() -> None:
    with pytest.raises(TargetRefusedError) as caught:
        check_url("https://admin:hunter2@example.com/", allow_private=False)
    assert "hunter2" not in str(caught.value)
    assert "admin" not in str(caught.value)

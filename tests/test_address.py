"""``lastgood.address.parse_server_url``, the one reader of a server's address for the SDK and
for ``--server``, in process and table-driven."""

from __future__ import annotations

import re

import pytest

from lastgood.address import ServerAddress, parse_server_url
from lastgood.errors import UsageError


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:8470", ServerAddress("127.0.0.1", 8470, "", False)),
        ("https://Ops.Example.com/lastgood/", ServerAddress("ops.example.com", None,
                                                            "/lastgood/", True)),
        ("http://[::1]:8470", ServerAddress("::1", 8470, "", False)),
        ("http://xn--bcher-kva.example", ServerAddress("xn--bcher-kva.example", None, "", False)),
    ],
)  # fmt: skip
def test_an_address_is_read_the_same_for_the_sdk_and_the_cli(
    url: str, expected: ServerAddress
) -> None:
    assert parse_server_url(url) == expected
    assert parse_server_url(url, what="--server", credentials=True) == expected


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("localhost:8470", "'localhost:8470' is not an http:// or https:// URL"),
        ("http://127.0.0.1:0", "'http://127.0.0.1:0' has port 0"),
        ("http://127.0.0.1:99999", "has a port that is not a number from 1 to 65535"),
        ("http://127.0.0.1:8470/?env=x", "has a query or fragment"),
        ("http://[fe80::1%25eth0]:8470", "names an IPv6 zone"),
        ("http://bücher.example", "must be ASCII"),
        ("http://a b:8470", "it has ' ', which no host name or address has"),
        ("http://lastgood..internal", "a host name part is empty or over 63 characters"),
        ("http://[zz::1]:8470", "is not a URL"),
    ],
)
def test_both_refuse_the_same_mistakes_naming_the_url_as_their_user_knows_it(
    url: str, message: str
) -> None:
    for what, credentials in (("the server URL", False), ("--server", True)):
        with pytest.raises(UsageError, match=re.escape(message)) as refused:
            parse_server_url(url, what=what, credentials=credentials)
        assert what in refused.value.message and refused.value.hint


def test_only_the_cli_takes_a_password_and_neither_ever_shows_it() -> None:
    with_password = "http://ops:hunter2@127.0.0.1:8470/"
    assert parse_server_url(with_password, what="--server", credentials=True).port == 8470
    for url, credentials, message in [
        (with_password, False, "carries a user name or password"),
        ("http://ops:hunter2@127.0.0.1:0", True, "'http://ops:***@127.0.0.1:0' has port 0"),
        ("http://ops:hunter2#x@127.0.0.1:8470", True, "'@' after its host part"),
        ("http://ops:hunter2/x@127.0.0.1:8470", True, "'@' after its host part"),
        ("http://ops:hunter2@[zz::1]:8470", True, "(not shown: it may hold a password)"),
    ]:
        with pytest.raises(UsageError, match=re.escape(message)) as refused:
            parse_server_url(url, what="--server", credentials=credentials)
        assert "hunter2" not in str(refused.value)

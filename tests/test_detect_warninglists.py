"""MISP warning lists, from the data ``pymispwarninglists`` ships, indexed for lookups.

The first part checks real values against the shipped lists (loaded once for the whole
module: reading and indexing them takes a few seconds); the second checks MISP's
matching rules per list type on small hand-made lists.
"""

from __future__ import annotations

import time
from types import GeneratorType

import pytest

from communique.detect import warninglists
from communique.detect.warninglists import KINDS, Hit, WarningLists

RFC1918 = "List of RFC 1918 CIDR blocks"
DNS_V4 = "List of known IPv4 public DNS resolvers"
DNS_V6 = "List of known IPv6 public DNS resolvers"
TRANCO = "Top 1,000,000 most-used sites from Tranco"
EMPTY_HASHES = "List of known hashes for empty files"


@pytest.fixture(scope="module")
def shipped() -> WarningLists:
    """The lists the package ships, read and indexed once."""
    return WarningLists.load()


def names(hits: list[Hit]) -> set[str]:
    """The names of the lists hit."""
    return {hit.name for hit in hits}


def match_of(hits: list[Hit], name: str) -> str:
    """The entry that list ``name`` matched."""
    return next(hit.match for hit in hits if hit.name == name)


# --- the shipped lists -----------------------------------------------------------------

def test_the_shipped_lists_load_once_and_whole(shipped: WarningLists) -> None:
    assert WarningLists.load() is shipped
    assert len(shipped) > 100 and len(shipped.names()) == len(shipped)
    assert RFC1918 in shipped.names() and TRANCO in shipped.names()
    sizes = shipped.sizes()
    assert sizes[RFC1918] == 3 and sizes[TRANCO] > 100_000
    assert shipped.skipped <= sum(sizes.values()) // 1000  # nearly every entry is usable


def test_reading_the_shipped_lists_is_lazy() -> None:
    assert isinstance(warninglists.shipped_lists(), GeneratorType)  # nothing read until iterated


@pytest.mark.parametrize("address, network", [
    ("10.1.2.3", "10.0.0.0/8"), ("172.16.5.4", "172.16.0.0/12"), ("192.168.1.1", "192.168.0.0/16"),
])
def test_rfc1918_addresses(shipped: WarningLists, address: str, network: str) -> None:
    hits = shipped.hits(address, kind="ipv4")
    assert match_of(hits, RFC1918) == network
    hit = next(h for h in hits if h.name == RFC1918)
    assert hit.list_type == "cidr" and "RFC 1918" in hit.description


def test_just_outside_rfc1918(shipped: WarningLists) -> None:
    assert RFC1918 not in names(shipped.hits("172.32.0.1", kind="ipv4"))


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "9.9.9.9"])
def test_public_dns_resolvers(shipped: WarningLists, address: str) -> None:
    assert DNS_V4 in names(shipped.hits(address, kind="ipv4"))


def test_a_top_domain_and_its_subdomains(shipped: WarningLists) -> None:
    top = shipped.hits("google.com", kind="domain")
    assert TRANCO in names(top) and "List of known google domains" in names(top)
    sub = shipped.hits("does-not-exist-1234.google.com", kind="domain")
    assert match_of(sub, TRANCO) == "google.com"  # a hostname list flags subdomains
    assert "List of known google domains" not in names(sub)  # a string list does not
    assert names(shipped.hits("WWW.Google.COM.", kind="domain")) >= {TRANCO}


@pytest.mark.parametrize("address, name", [
    ("52.95.0.1", "List of known Amazon AWS IP address ranges"),
    ("34.0.0.1", "List of known GCP (Google Cloud Platform) IP address ranges"),
    ("104.16.0.1", "List of known Cloudflare IP ranges"),
])
def test_cloud_provider_ranges(shipped: WarningLists, address: str, name: str) -> None:
    assert name in names(shipped.hits(address, kind="ipv4"))


@pytest.mark.parametrize("address, name, network", [
    ("2001:4860:4860::8888", DNS_V6, "2001:4860:4860::8888/128"),
    ("2606:4700:4700::1111", "List of known Cloudflare IP ranges", "2606:4700::/32"),
    ("fe80::1", "List of IPv6 link local blocks", "fe80::/10"),
    ("2001:DB8::1", "List of RFC 3849 CIDR blocks", "2001:db8::/32"),
    ("::ffff:10.0.0.1", RFC1918, "10.0.0.0/8"),  # IPv4-mapped: checked as its IPv4 address
])
def test_ipv6(shipped: WarningLists, address: str, name: str, network: str) -> None:
    assert match_of(shipped.hits(address, kind="ipv6"), name) == network


def test_a_network_value_hits_the_lists_that_contain_it(shipped: WarningLists) -> None:
    assert match_of(shipped.hits("10.20.0.0/16", kind="ipv4"), RFC1918) == "10.0.0.0/8"
    assert RFC1918 not in names(shipped.hits("10.0.0.0/7", kind="ipv4"))  # wider than the list


@pytest.mark.parametrize("url, name, match", [
    ("https://www.google.com/search?q=x", TRANCO, "google.com"),
    ("HTTP://User:pw@Docs.Google.com:8443/a", TRANCO, "google.com"),
    ("www.google.com/path", TRANCO, "google.com"),
    ("http://10.0.0.5:8080/x", RFC1918, "10.0.0.0/8"),
    ("http://[fe80::1]/", "List of IPv6 link local blocks", "fe80::/10"),
])
def test_a_url_is_checked_through_its_host(shipped: WarningLists, url: str, name: str, match: str) -> None:
    assert match_of(shipped.hits(url, kind="url"), name) == match


@pytest.mark.parametrize("digest", ["d41d8cd98f00b204e9800998ecf8427e", "D41D8CD98F00B204E9800998ECF8427E",
                                    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"])
def test_empty_file_hashes(shipped: WarningLists, digest: str) -> None:
    assert EMPTY_HASHES in names(shipped.hits(digest, kind="hash"))


def test_email_addresses(shipped: WarningLists) -> None:
    contact = shipped.hits("abuse@example.com", kind="email")
    assert [h.list_type for h in contact] == ["regex"]
    disposable = shipped.hits("someone@mailinator.com", kind="email")
    assert match_of(disposable, "List of disposable email domains") == "mailinator.com"


def test_other_values(shipped: WarningLists) -> None:
    hits = shipped.hits("14d82eec-204b-4c2f-b7e8-296a70dab67e", kind="other")
    assert [h.list_type for h in hits] == ["string"]


@pytest.mark.parametrize("value, kind", [
    ("5.6.7.8", "ipv4"), ("2001:67c:2e8:22::c100:68b", "ipv6"), ("kdjfhgkjdhfg.com", "domain"),
    ("https://kdjfhgkjdhfg.com/x", "url"), ("0123456789abcdef0123456789abcdef", "hash"),
    ("someone@kdjfhgkjdhfg.com", "email"), ("nothing to see", "other"),
])
def test_values_on_no_list(shipped: WarningLists, value: str, kind: str) -> None:
    assert shipped.hits(value, kind=kind) == []


def test_only_the_lists_of_the_kind_apply(shipped: WarningLists) -> None:
    assert shipped.hits("8.8.8.8", kind="hash") == []
    assert shipped.hits("google.com", kind="hash") == []
    assert shipped.hits("d41d8cd98f00b204e9800998ecf8427e", kind="domain") == []
    assert shipped.hits("google.com", kind="ipv4") == []  # not an address
    assert all(h.list_type != "cidr" for h in shipped.hits("8.8.8.8", kind="domain"))


HOSTILE = ["", "   ", "\x00", "\ud800", ".", "..", "%", "a" * 100_000, "a." * 50_000, "1.2.3.999",
           "::::", "10.0.0.1/33", "10.0.0.1/-1", "http://[::1", "http://", "//", "http://a:99999/",
           "mailto:", "\n8.8.8.8\n", "ftp://" + "x" * 300 + ".com/", "@" * 5000, "/" * 5000]


@pytest.mark.parametrize("kind", KINDS)
def test_hostile_input_never_raises(shipped: WarningLists, kind: str) -> None:
    for value in HOSTILE:
        assert isinstance(shipped.hits(value, kind=kind), list)
    assert shipped.hits(None, kind=kind) == []  # type: ignore[arg-type]
    assert shipped.hits(8, kind=kind) == []  # type: ignore[arg-type]


def test_surrounding_whitespace_is_ignored(shipped: WarningLists) -> None:
    assert DNS_V4 in names(shipped.hits("\n 8.8.8.8\t", kind="ipv4"))


def test_an_unknown_kind_is_a_programming_error(shipped: WarningLists) -> None:
    with pytest.raises(ValueError):
        shipped.hits("8.8.8.8", kind="ip")


def test_lookups_are_indexed_not_scanned(shipped: WarningLists) -> None:
    # Lists hold over 100,000 networks and 2,000,000 names; a scan would take hours here.
    started = time.perf_counter()
    for i in range(20_000):
        shipped.hits(f"{i % 223 + 1}.{i % 256}.{i // 256 % 256}.{i % 254 + 1}", kind="ipv4")
        shipped.hits(f"host{i}.example{i % 97}.org", kind="domain")
    assert time.perf_counter() - started < 20  # about half a second on the project's machines


# --- MISP's rules per list type, on small lists -------------------------------------------

def wl(list_type: str, entries: list, *, types: list | None = None, name: str = "L") -> dict:
    """A warning list document as MISP writes them."""
    document = {"name": name, "description": f"{name} test list", "version": 1,
                "type": list_type, "list": entries}
    if types is not None:
        document["matching_attributes"] = types
    return document


def test_hostname_lists_flag_the_domain_and_its_subdomains() -> None:
    lists = WarningLists([wl("hostname", [".Example.com", "other.org."], types=["domain", "url"])])
    for value in ("example.com", "www.example.com", "a.b.EXAMPLE.com.", "x.other.org"):
        assert lists.hits(value, kind="domain") != [], value
    for value in ("badexample.com", "example.com.evil", "com", "org"):
        assert lists.hits(value, kind="domain") == [], value
    assert lists.hits("https://cdn.example.com:443/x", kind="url")[0].match == "example.com"


def test_string_lists_match_exactly_ignoring_case() -> None:
    lists = WarningLists([wl("string", ["example.com", ".google.ad"], types=["domain"])])
    assert lists.hits("EXAMPLE.com", kind="domain")[0].match == "example.com"
    assert lists.hits("www.example.com", kind="domain") == []
    assert lists.hits("www.google.ad", kind="domain") == []  # a dot does not make a string list a suffix


def test_substring_lists_match_inside_the_value() -> None:
    entries = ["tracker", "ads."] + [f"filler{n}" for n in range(500)]  # enough to take the sliced path
    lists = WarningLists([wl("substring", entries, types=["domain", "email-src"])])
    assert lists.hits("my-Tracker.net", kind="domain")[0].match == "tracker"
    assert lists.hits("me@ads.example", kind="email")[0].match == "ads."
    assert lists.hits("clean.example", kind="domain") == []
    assert lists.hits("x" * (warninglists.MAX_SCAN_CHARS + 1) + "tracker", kind="domain") == []


def test_regex_lists_take_pcre_delimiters_and_flags() -> None:
    lists = WarningLists([wl("regex", ["/^(noc|abuse)@/i", "#[0-9]{3}555[0-9]{4}#g", "/unclosed(/", "plain"],
                             types=["email-src", "phone-number"])])
    assert lists.skipped == 2
    assert lists.hits("ABUSE@example.org", kind="email")[0].match == "/^(noc|abuse)@/i"
    assert lists.hits("call 2125550123", kind="other") != []
    assert lists.hits("me@abuse.example", kind="email") == []


def test_cidr_lists_take_networks_and_bare_addresses() -> None:
    lists = WarningLists([wl("cidr", ["192.0.2.0/24", "198.51.100.7", "2001:db8::/32", "not a net", "10.0.0.1/40"],
                             types=["ip-dst"])])
    assert lists.skipped == 2
    assert lists.hits("192.0.2.200", kind="ipv4")[0].match == "192.0.2.0/24"
    assert lists.hits("198.51.100.7", kind="ipv4")[0].match == "198.51.100.7/32"
    assert lists.hits("198.51.100.8", kind="ipv4") == []
    assert lists.hits("2001:db8:1::5", kind="ipv6")[0].match == "2001:db8::/32"


def test_matching_attributes_choose_the_kinds() -> None:
    lists = WarningLists([
        wl("string", ["x"], types=["md5"], name="hashes"),
        wl("string", ["x"], types=["domain|ip"], name="composite only"),
        wl("string", ["x"], name="no types"),
    ])
    assert names(lists.hits("x", kind="hash")) == {"hashes", "no types"}
    assert names(lists.hits("x", kind="domain")) == {"no types"}
    assert names(lists.hits("x", kind="other")) == {"composite only", "no types"}


def test_malformed_list_documents_are_skipped() -> None:
    lists = WarningLists([wl("bloom", ["x"]), {"name": "no entries", "type": "string"}, "junk",
                          wl("string", ["ok", 7, None, ""], types=["domain"])])
    assert len(lists) == 1 and lists.skipped == 6
    assert lists.hits("ok", kind="domain") != []


def test_each_list_is_reported_once_with_its_first_match() -> None:
    lists = WarningLists([wl("hostname", ["example.com", "www.example.com"], types=["domain"])])
    assert lists.hits("www.example.com", kind="domain") == [
        Hit(name="L", description="L test list", list_type="hostname", match="example.com")]


def test_cidr_lookups_probe_one_table_per_prefix_length() -> None:
    # Some 66,000 networks of three lengths: a lookup probes three tables, not every network.
    entries = [f"10.{a}.{b}.0/24" for a in range(256) for b in range(254)]
    entries += [f"172.16.{a}.{b}" for a in range(4) for b in range(256)] + ["192.168.0.0/16"]
    lists = WarningLists([wl("cidr", entries, types=["ip-src"])])
    assert [prefix for prefix, _, _ in lists._probes[4]] == [16, 24, 32]
    assert lists.hits("10.200.13.77", kind="ipv4")[0].match == "10.200.13.0/24"
    assert lists.hits("10.200.255.1", kind="ipv4") == []

"""Pure protocol units: timestamps, media types, query filters and paging cursors."""

from __future__ import annotations

import base64

import pytest

from communique import timestamps
from communique.errors import BadRequest
from communique.taxii import cursor, filters, media
from communique.taxii.filters import ALL_VERSIONS, LAST_VERSION, Query, Versions

NEW_YEAR_2024_US = 1_704_067_200_000_000


# -- timestamps ----------------------------------------------------------------------------
@pytest.mark.parametrize("text, micros", [
    ("1970-01-01T00:00:00Z", 0),
    ("2024-01-01T00:00:00Z", NEW_YEAR_2024_US),
    ("2024-01-01T00:00:00.5Z", NEW_YEAR_2024_US + 500_000),
    ("2024-01-01T00:00:00.123Z", NEW_YEAR_2024_US + 123_000),
    ("2024-01-01T00:00:00.123456Z", NEW_YEAR_2024_US + 123_456),
    ("2024-02-29T12:34:56.000Z", 1_709_210_096_000_000),
])
def test_parse_timestamps(text: str, micros: int) -> None:
    """Parse RFC 3339 UTC timestamps of every precision to microseconds."""
    assert timestamps.parse(text) == micros


@pytest.mark.parametrize("fraction", ["1234567", "12345678", "123456789"])
def test_parse_truncates_below_a_microsecond(fraction: str) -> None:
    """Truncate (never round) precision finer than a microsecond."""
    assert timestamps.parse(f"2024-01-01T00:00:00.{fraction}Z") == NEW_YEAR_2024_US + 123_456


def test_parse_truncates_any_number_of_fraction_digits() -> None:
    """Accept and truncate more than nine fraction digits (STIX 2.1 §3.2: [.s+])."""
    assert timestamps.parse("2024-01-01T00:00:00.999999999999Z") == NEW_YEAR_2024_US + 999_999


@pytest.mark.parametrize("micros", [0, 1, 999_999, NEW_YEAR_2024_US + 123_456,
                                    253_402_300_799_999_999])
def test_format_us_round_trip(micros: int) -> None:
    """Format microseconds so that parsing gives back the same instant."""
    text = timestamps.format_us(micros)
    assert text.endswith("Z") and len(text) == len("2024-01-01T00:00:00.000000Z")
    assert timestamps.parse(text) == micros


def test_format_us_and_format_ms() -> None:
    """Write six fraction digits for TAXII and three (truncated) for STIX."""
    assert timestamps.format_us(NEW_YEAR_2024_US + 123_456) == "2024-01-01T00:00:00.123456Z"
    assert timestamps.format_ms(NEW_YEAR_2024_US + 123_999) == "2024-01-01T00:00:00.123Z"


@pytest.mark.parametrize("text", [
    "2024-01-01T00:00:00",            # no Z
    "2024-01-01T00:00:00+00:00",      # an offset, not Z
    "2024-01-01T01:00:00+01:00",
    "2024-01-01 00:00:00Z",           # space instead of T
    "2024-01-01",                     # a date only
    "2024-01-01T00:00Z",              # no seconds
    "2024-01-01T00:00:00.Z",          # an empty fraction
    "2024-1-1T00:00:00Z",             # unpadded fields
    " 2024-01-01T00:00:00Z",          # surrounding whitespace
    "2024-01-01T00:00:00Z\n",
    "2024-01-01T00:00:00ZZ",
    "yesterday",
    "",
])
def test_parse_rejects_malformed_text(text: str) -> None:
    """Refuse anything that is not YYYY-MM-DDTHH:MM:SS[.s]Z."""
    with pytest.raises(ValueError, match="RFC 3339"):
        timestamps.parse(text)


@pytest.mark.parametrize("text", [
    "2024-02-30T00:00:00Z", "2023-02-29T00:00:00Z", "2024-13-01T00:00:00Z",
    "2024-00-10T00:00:00Z", "2024-01-01T24:00:00Z", "2024-01-01T00:60:00Z",
    "0000-01-01T00:00:00Z",
])
def test_parse_rejects_impossible_dates(text: str) -> None:
    """Refuse well-shaped timestamps that name no real instant."""
    with pytest.raises(ValueError, match="not a real date"):
        timestamps.parse(text)


@pytest.mark.parametrize("value", [None, 0, 1704067200, 1.5, b"2024-01-01T00:00:00Z", [], {}])
def test_parse_rejects_non_strings(value: object) -> None:
    """Refuse values that are not strings at all."""
    with pytest.raises(ValueError, match="must be a string"):
        timestamps.parse(value)


@pytest.mark.parametrize("text", [
    pytest.param("２０２４-01-01T00:00:00Z", id="full-width-year"),
    pytest.param("٢٠٢٤-01-01T00:00:00Z", id="arabic-indic-year"),
    pytest.param("2024-01-01T00:00:00.１２３Z", id="full-width-fraction"),
])
def test_parse_rejects_non_ascii_digits(text: str) -> None:
    """Refuse digits outside ASCII (RFC 3339 DIGIT is %x30-39)."""
    with pytest.raises(ValueError):
        timestamps.parse(text)


# -- media types ---------------------------------------------------------------------------
@pytest.mark.parametrize("accept", [
    None, "", "   ",
    "application/taxii+json;version=2.1",
    "application/taxii+json; version=2.1",
    'application/taxii+json;version="2.1"',
    "APPLICATION/TAXII+JSON;VERSION=2.1",
    "application/taxii+json",
    "*/*",
    "application/*",
    "text/html, application/taxii+json;version=2.1;q=0.5",
    "application/taxii+json;version=2.0, application/taxii+json;version=2.1",
    "application/taxii+json;version=2.0, */*;q=0.1",
    "text/html;q=0.9, application/*;q=0.8",
])
def test_accepts_taxii(accept: str | None) -> None:
    """Admit TAXII 2.1 for the headers RFC 9110 says admit it."""
    assert media.accepts_taxii(accept)


@pytest.mark.parametrize("accept", [
    "application/taxii+json;version=2.0",
    "application/json",
    "application/stix+json;version=2.1",
    "text/html",
    "text/*",
    "image/png, text/plain",
    "application/taxii+json;version=2.1;q=0",
    "application/taxii+json;q=0.0",
    "*/*;q=0",
    "application/*;q=0",
])
def test_does_not_accept_taxii(accept: str) -> None:
    """Refuse headers that exclude TAXII 2.1, including q=0."""
    assert not media.accepts_taxii(accept)


@pytest.mark.parametrize("accept", [
    "application/taxii+json;version=2.1;q=0, */*",
    "application/taxii+json;q=0, application/*",
    "application/*;q=0, */*",
])
def test_most_specific_q_zero_excludes_taxii(accept: str) -> None:
    """Let the most specific matching range decide, so its q=0 excludes TAXII (RFC 9110 §12.5.1)."""
    assert not media.accepts_taxii(accept)


@pytest.mark.parametrize("content_type", [
    "application/taxii+json;version=2.1",
    "application/taxii+json; version=2.1",
    "application/taxii+json;version=2.1;charset=utf-8",
    "application/taxii+json; charset=UTF-8; version=2.1",
    "Application/TAXII+JSON;version=2.1",
    "application/taxii+json",
])
def test_is_taxii_content(content_type: str) -> None:
    """Take TAXII 2.1 JSON bodies, with or without a charset."""
    assert media.is_taxii_content(content_type)


@pytest.mark.parametrize("content_type", [
    None, "",
    "application/taxii+json;version=2.0",
    "application/taxii+json;version=2.0;charset=utf-8",
    "application/stix+json;version=2.1",
    "application/stix+json",
    "application/json",
    "text/plain",
    "application/x-www-form-urlencoded",
])
def test_is_not_taxii_content(content_type: str | None) -> None:
    """Refuse bodies that are not TAXII 2.1 JSON, the STIX media type included."""
    assert not media.is_taxii_content(content_type)


# -- filters -------------------------------------------------------------------------------
ID_A = "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f"
ID_B = "malware--31b940d4-6f7f-459a-80ea-9c1f17b5891b"


def parse(*pairs: tuple[str, str], allowed: frozenset[str] = filters.OBJECTS,
          max_page_size: int = 100) -> Query:
    """Parse query pairs as the objects endpoint would."""
    return filters.parse(pairs, allowed=allowed, max_page_size=max_page_size)


def refused(*pairs: tuple[str, str], allowed: frozenset[str] = filters.OBJECTS) -> str:
    """Return the description of the BadRequest the pairs provoke."""
    with pytest.raises(BadRequest) as caught:
        parse(*pairs, allowed=allowed)
    assert caught.value.status == 400
    return caught.value.description


def test_no_parameters_give_defaults() -> None:
    """Without parameters: a full page, the last version of everything."""
    query = parse()
    assert query == Query(limit=100, versions=LAST_VERSION)
    assert query.next is None and query.added_after is None


def test_every_filter() -> None:
    """Parse each filter the objects endpoint honours."""
    query = parse(("added_after", "2024-01-01T00:00:00.5Z"), ("limit", "10"), ("next", "abc"),
                  ("match[id]", ID_A), ("match[type]", "indicator"),
                  ("match[version]", "first"), ("match[spec_version]", "2.1"))
    assert query.added_after == NEW_YEAR_2024_US + 500_000
    assert query.limit == 10 and query.next == "abc"
    assert query.ids == (ID_A,) and query.types == ("indicator",)
    assert query.versions == Versions(first=True)
    assert query.spec_versions == ("2.1",)


def test_comma_lists_and_repeated_parameters_combine() -> None:
    """Merge comma lists and repeated parameters, without duplicates."""
    query = parse(("match[type]", "malware,indicator"), ("match[type]", "indicator, tool"),
                  ("match[id]", f"{ID_B},{ID_A}"), ("match[id]", ID_A),
                  ("match[spec_version]", "2.0,2.1"))
    assert query.types == ("indicator", "malware", "tool")
    assert query.ids == (ID_A, ID_B)
    assert query.spec_versions == ("2.0", "2.1")


def test_version_keywords_and_timestamps() -> None:
    """Parse first, last and exact versions together, sorted and unique."""
    query = parse(("match[version]", "first,last,2024-01-01T00:00:01Z"),
                  ("match[version]", "2024-01-01T00:00:00Z,2024-01-01T00:00:01.000Z"))
    assert query.versions == Versions(first=True, last=True,
                                      exact=(NEW_YEAR_2024_US, NEW_YEAR_2024_US + 1_000_000))


@pytest.mark.parametrize("values", [["all"], ["first,all"], ["all", "last"],
                                    ["2024-01-01T00:00:00Z,all,first"]])
def test_version_all_overrides_the_others(values: list[str]) -> None:
    """Let match[version]=all win over every other value."""
    query = parse(*(("match[version]", v) for v in values))
    assert query.versions == ALL_VERSIONS


@pytest.mark.parametrize("limit, expected", [("1", 1), ("100", 100), ("101", 100),
                                             ("999999999999", 100), ("007", 7)])
def test_limit_is_clamped_to_max_page_size(limit: str, expected: int) -> None:
    """Lower a limit above max_page_size to it; keep smaller ones."""
    assert parse(("limit", limit)).limit == expected


@pytest.mark.parametrize("limit", [
    "0", "-1", "abc", "", " 5", "5.0", "1e3", "+5", "0x10",
    pytest.param("²", id="superscript-two"),
    pytest.param("1" * 5000, id="5000-digits"),
])
def test_bad_limits(limit: str) -> None:
    """Refuse a limit that is not a positive integer, naming the parameter."""
    assert "limit" in refused(("limit", limit))


@pytest.mark.parametrize("name, value", [
    ("added_after", "yesterday"),
    ("added_after", "2024-02-30T00:00:00Z"),
    ("added_after", "2024-01-01T00:00:00+00:00"),
    ("match[id]", "not-an-id"),
    ("match[id]", "indicator--not-a-uuid"),
    ("match[id]", f"{ID_A},bogus"),
    ("match[id]", ""),
    ("match[id]", ","),
    ("match[type]", "Indicator"),
    ("match[type]", "a"),
    ("match[type]", "x_y"),
    ("match[type]", ""),
    ("match[version]", "yesterday"),
    ("match[version]", "last,2024-13-01T00:00:00Z"),
    ("match[version]", ""),
    ("match[spec_version]", "x"),
    ("match[spec_version]", "2"),
    ("match[spec_version]", "2.1,latest"),
    ("match[spec_version]", ""),
])
def test_malformed_filters_name_the_parameter(name: str, value: str) -> None:
    """Refuse a malformed filter with a message that names it."""
    assert name in refused((name, value))


@pytest.mark.parametrize("name, value", [("added_after", "2024-01-01T00:00:00Z"),
                                         ("limit", "5"), ("next", "abc")])
def test_single_valued_parameters_may_not_repeat(name: str, value: str) -> None:
    """Refuse added_after, limit and next given twice."""
    assert name in refused((name, value), (name, value))


def test_unknown_parameters_are_ignored() -> None:
    """Ignore parameters the endpoint does not honour (TAXII 2.1 §3.4)."""
    query = parse(("match[colour]", "red"), ("foo", "bar"), ("match[id", "x"), ("LIMIT", "zero"))
    assert query == parse()


def test_parameters_of_other_endpoints_are_ignored() -> None:
    """Ignore, not refuse, filters that another endpoint would honour."""
    query = parse(("match[id]", "garbage"), ("match[type]", "Garbage"), ("limit", "abc"),
                  allowed=filters.DELETE)
    assert query.ids == () and query.types == () and query.limit == 100


def test_versions_endpoint_defaults_to_all_versions() -> None:
    """Use the default versions an endpoint passes in when match[version] is absent."""
    query = filters.parse([], allowed=filters.VERSIONS, max_page_size=10,
                          default_versions=ALL_VERSIONS)
    assert query.versions == ALL_VERSIONS and query.limit == 10


def test_query_identity_ignores_paging() -> None:
    """Bind cursors to the filters, not to limit or next."""
    one = parse(("match[type]", "indicator"), ("limit", "5"), ("next", "a"))
    two = parse(("match[type]", "indicator"), ("limit", "50"))
    other = parse(("match[type]", "malware"), ("limit", "5"))
    assert one.identity() == two.identity()
    assert one.identity() != other.identity()


# -- cursors -------------------------------------------------------------------------------
KEY = b"k" * 32
SCOPE = (("objects", "collection-1"), ("filters",))


def unpadded(raw: bytes) -> str:
    """Encode bytes as a cursor does (URL-safe base64 without padding)."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def raw_of(token: str) -> bytes:
    """Decode a cursor to its bytes (payload followed by the MAC)."""
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))


def assert_refused(token: str, *, key: bytes = KEY, scope: object = SCOPE) -> None:
    """Assert that the cursor is refused with a 400 that names 'next'."""
    with pytest.raises(BadRequest, match="next"):
        cursor.decode(key, token, scope=scope)


@pytest.mark.parametrize("position", [0, 1, NEW_YEAR_2024_US + 123_456, 2**62])
def test_cursor_round_trip(position: int) -> None:
    """Give back the position a cursor was made with."""
    token = cursor.encode(KEY, position=position, scope=SCOPE)
    assert cursor.decode(KEY, token, scope=SCOPE) == position
    assert len(token) <= 200 and token.isascii() and "=" not in token


def test_cursor_is_url_safe() -> None:
    """Make cursors that need no escaping in a query string."""
    token = cursor.encode(KEY, position=NEW_YEAR_2024_US, scope=SCOPE)
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


@pytest.mark.parametrize("index", [0, 5, 10, -17])
def test_cursor_with_tampered_payload_is_refused(index: int) -> None:
    """Refuse a cursor whose payload bytes were changed."""
    raw = bytearray(raw_of(cursor.encode(KEY, position=NEW_YEAR_2024_US, scope=SCOPE)))
    raw[index] ^= 0x01
    assert_refused(unpadded(bytes(raw)))


def test_cursor_with_a_forged_position_is_refused() -> None:
    """Refuse a cursor whose position was rewritten to another number."""
    raw = raw_of(cursor.encode(KEY, position=1_000_000, scope=SCOPE))
    assert_refused(unpadded(raw.replace(b"1000000", b"9000000", 1)))


@pytest.mark.parametrize("index", [-1, -8, -16])
def test_cursor_with_tampered_mac_is_refused(index: int) -> None:
    """Refuse a cursor whose MAC bytes were changed."""
    raw = bytearray(raw_of(cursor.encode(KEY, position=NEW_YEAR_2024_US, scope=SCOPE)))
    raw[index] ^= 0x80
    assert_refused(unpadded(bytes(raw)))


@pytest.mark.parametrize("cut", [1, 4, 16, 22])
def test_truncated_cursor_is_refused(cut: int) -> None:
    """Refuse a cursor with characters cut off its end."""
    token = cursor.encode(KEY, position=NEW_YEAR_2024_US, scope=SCOPE)
    assert_refused(token[:-cut])


def test_cursor_without_payload_is_refused() -> None:
    """Refuse a cursor that is only a MAC, or shorter."""
    raw = raw_of(cursor.encode(KEY, position=NEW_YEAR_2024_US, scope=SCOPE))
    assert_refused(unpadded(raw[-16:]))
    assert_refused(unpadded(raw[-8:]))


@pytest.mark.parametrize("token", ["", "a", "ab", "!!!!", "not a cursor", "====", "é" * 10,
                                   "\x00" * 8, "A" * 41, "%2F%2F", "ZZZZ" * 10])
def test_garbage_cursor_is_refused(token: str) -> None:
    """Refuse strings that were never cursors."""
    assert_refused(token)


def test_overlong_cursor_is_refused() -> None:
    """Refuse a cursor longer than any the server issues, before decoding it."""
    token = cursor.encode(KEY, position=NEW_YEAR_2024_US, scope=SCOPE)
    assert_refused(token + "A" * (201 - len(token)))
    assert_refused("A" * 100_000)


def test_cursor_from_another_scope_is_refused() -> None:
    """Refuse a cursor made for another collection or another query."""
    token = cursor.encode(KEY, position=NEW_YEAR_2024_US, scope=SCOPE)
    assert_refused(token, scope=(("objects", "collection-2"), ("filters",)))
    assert_refused(token, scope=(("objects", "collection-1"), ("other filters",)))
    assert_refused(token, scope=(("manifest", "collection-1"), ("filters",)))


def test_cursor_from_another_key_is_refused() -> None:
    """Refuse a cursor signed by another node."""
    token = cursor.encode(b"another key", position=NEW_YEAR_2024_US, scope=SCOPE)
    assert_refused(token)

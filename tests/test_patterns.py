"""The pattern fast lane never disagrees with the reference parser (stix2-patterns)."""

from __future__ import annotations

import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from communique.stix import patterns

COMMON = [
    "[ipv4-addr:value = '198.51.100.1']",
    "[ipv4-addr:value = '198.51.100.0/24']",
    "[ipv6-addr:value = '2001:db8::1']",
    "[domain-name:value = 'evil.example']",
    "[url:value = 'http://evil.example/a?b=c']",
    "[email-addr:value = 'phish@evil.example']",
    "[file:hashes.'SHA-256' = 'aec070645fe53ee3b3763059376134f058cc337247c978add178b6ccdfb0019f']",
    "[file:hashes.MD5 = 'd41d8cd98f00b204e9800998ecf8427e']",
    "[file:name = 'invoice.pdf.exe' AND file:size != '0']",
    "[email-message:sender_ref.value = 'a@evil.example' AND email-message:subject = 'Invoice']",
    "[network-traffic:dst_ref.type = 'ipv4-addr' AND network-traffic:dst_ref.value = '203.0.113.5']",
    "[mutex:name = 'Global\\\\evil' OR windows-registry-key:key = 'HKEY_LOCAL_MACHINE\\\\Run']",
    "[ipv4-addr:value ISSUBSET '198.51.100.0/24']",
    "[email-message:from_ref.value MATCHES '^.*@evil[.]example$']",
    "[network-traffic:dst_ref.value = '203.0.113.5' AND network-traffic:dst_port = 443]",
    "[file:name LIKE 'invoice%.exe'] FOLLOWEDBY [domain-name:value = 'evil.example'] WITHIN 300 SECONDS",
    "[x-custom-thing:x_field = 'it''s']",
]


def reference_valid(pattern: str) -> bool:
    return patterns._reference_problem.__wrapped__(pattern) == ""


def test_common_patterns_take_the_fast_lane_and_are_valid() -> None:
    """The shapes producers emit are decided without the parser, and rightly."""
    for pattern in COMMON[:-1]:
        assert patterns._fast_valid(pattern), pattern
        assert reference_valid(pattern), pattern
    assert not patterns._fast_valid(COMMON[-1])  # '' is not an escape: left to the parser


def test_bad_hashes_are_refused_like_the_reference() -> None:
    """A malformed hash value is invalid, with the reference library's message."""
    pattern = "[file:hashes.'SHA-256' = 'not-a-hash']"
    assert not patterns._fast_valid(pattern)
    assert "not a valid SHA-256 hash" in patterns.problem(pattern)


def test_hostile_pattern_is_fast_and_refused() -> None:
    """A long pathological pattern does not stall the fast lane (no catastrophic backtracking)."""
    for hostile in ("[" + "a" * 60000, "[a:b = '" + "\\'" * 30000,
                    "[a:b" + ".c" * 20000 + " = ", "[a:b = 'x'" + " AND a:b = 'x'" * 4000 + " AND"):
        started = time.perf_counter()
        assert not patterns._fast_valid(hostile)
        assert time.perf_counter() - started < 1.0
    assert patterns.problem("x" * 70000).startswith("pattern longer than")


def weighted(usual: list[str], unusual: list[str]) -> st.SearchStrategy[str]:
    """Mostly well-formed tokens, sometimes the ones that trip a lexer."""
    return st.one_of(st.sampled_from(usual), st.sampled_from(usual),
                     st.sampled_from(usual), st.sampled_from(unusual))


IDENTS = weighted(["value", "name", "hashes", "MD5", "x_y", "sender_ref", "dst_ref", "key"],
                  ["AND", "true", "IN", "a1", "_p", "9x", "na-me", "LAST", "INx"])
TYPES = weighted(["ipv4-addr", "file", "x-custom", "url", "email-message", "Foo_Bar"],
                 ["OR", "a", "e-", "-x", "IN-x", "9a"])
STRINGS = weighted(["'x'", "'SHA-256'", "'d41d8cd98f00b204e9800998ecf8427e'", "''", "'1'",
                    "'aec070645fe53ee3b3763059376134f058cc337247c978add178b6ccdfb0019f'"],
                   ["'a\\'b'", "'a\\\\b'", "'a\\b'", "'unterminated", "'SHA-1'"])
SPACES = weighted(["", " "], ["  ", "\t", "\n", "\x1c", "\u00a0", "/* c */", "\u2028"])
OPS = weighted(["=", "!=", "==", " LIKE ", " MATCHES ", " ISSUBSET ", " ISSUPERSET ", ">", "<="],
               ["<>", "<", "LIKE", "MATCHES", "= =", "IN", " NOT =", "ISSUBSET", " issubset ",
                "=>", " EXISTS "])
COMPONENT = st.one_of(IDENTS.map(lambda i: "." + i), STRINGS.map(lambda s: "." + s),
                      weighted(["[0]", "[*]"], ["[01]", "[-1]", "[x]"]))
VALUES = st.one_of(STRINGS, STRINGS, STRINGS,
                   st.sampled_from(["1", "0", "443", "-7", "+3", "01", "1.5", "true",
                                    "t'2020-01-01T00:00:00Z'", "h'ff'", "b'AA=='", "('a', 'b')"]))
QUALIFIERS = weighted(["", "", " WITHIN 300 SECONDS", " REPEATS 5 TIMES"],
                      [" WITHIN 1.5 SECONDS", " REPEATS 0 TIMES", " WITHIN 5 SECONDS WITHIN 6 SECONDS",
                       " REPEATS 2 TIMES WITHIN 3 SECONDS", " START t'2020-01-01T00:00:00Z' STOP t'2021-01-01T00:00:00Z'",
                       " WITHIN -1 SECONDS", "WITHIN 5 SECONDS", " WITHIN 5 SECOND"])


@st.composite
def comparison(draw: st.DrawFn) -> str:
    first = draw(st.one_of(IDENTS, STRINGS))
    path = first + "".join(draw(st.lists(COMPONENT, max_size=2)))
    return f"{draw(TYPES)}:{path}{draw(SPACES)}{draw(OPS)}{draw(SPACES)}{draw(VALUES)}"


@st.composite
def observation(draw: st.DrawFn) -> str:
    parts = draw(st.lists(comparison(), min_size=1, max_size=3))
    joined = parts[0]
    for part in parts[1:]:
        joiner = draw(weighted([" AND ", " OR "], ["AND", " and ", " FOLLOWEDBY ", "\nOR\t"]))
        joined += joiner + part
    opening, closing = draw(st.one_of(
        st.just(("[", "]")), st.just(("[", "]")),
        st.sampled_from([("[", ""), ("", "]"), ("([", "])"), ("[ ", " ]"), (" [", "]")])))
    return opening + joined + closing + draw(QUALIFIERS)


@st.composite
def pattern(draw: st.DrawFn) -> str:
    parts = draw(st.lists(observation(), min_size=1, max_size=3))
    joined = parts[0]
    for part in parts[1:]:
        joined += draw(weighted([" FOLLOWEDBY ", " AND ", " OR "], ["FOLLOWEDBY", " , ", " followedby "])) + part
    suffix = draw(weighted([""], [" WITHIN 5 SECONDS", " REPEATS 2 TIMES", "x", " "]))
    return joined + suffix


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pattern())
def test_fast_lane_agrees_with_reference(candidate: str) -> None:
    """Whenever the fast lane says valid, the reference parser says valid too."""
    if patterns._fast_valid(candidate):
        assert reference_valid(candidate), candidate
    assert (patterns.problem(candidate) == "") == reference_valid(candidate)

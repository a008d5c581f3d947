"""STIX 2.1 pattern checking: the reference parser, with a fast lane for the common shapes.

``stix2-patterns`` (an ANTLR grammar) is the authority, but it costs a few hundred
microseconds per pattern, which would cap ingest far below our targets. Most
producers emit observations of plain comparisons, such as
``[ipv4-addr:value = '198.51.100.1']``, ``[file:hashes.'SHA-256' = '…']`` or
``[a:b = 'x'] FOLLOWEDBY [c:d MATCHES 'y'] WITHIN 300 SECONDS``. For exactly
those, a strict regular-expression reading of the same grammar decides "valid" in
microseconds, then applies the reference library's own hash checks. Anything it
is not sure of (NOT, EXISTS, IN, parentheses, floats, binary/hex/timestamp
literals, START/STOP, odd spacing, keywords, a failed hash check) goes to the
reference parser, so the fast lane can only ever agree with it;
``tests/test_patterns.py`` checks that on generated patterns.
"""

from __future__ import annotations

import re
from collections import namedtuple
from functools import lru_cache

MAX_LENGTH = 65536

# The lexer's keywords: never identifiers (stix2-patterns v21 STIXPatternLexer).
_KEYWORDS = ("AND|OR|NOT|FOLLOWEDBY|LIKE|MATCHES|ISSUPERSET|ISSUBSET|EXISTS|LAST|IN|START|"
             "STOP|SECONDS|true|false|WITHIN|REPEATS|TIMES")
_WS = "[ \\t\\r\\n\\x0b\\x0c\\x85\\xa0\\u2028\\u2029]"  # the grammar's WS token, exactly
_IDENT = rf"(?!(?:{_KEYWORDS})(?![A-Za-z0-9_]))[A-Za-z_][A-Za-z0-9_]*"
_TYPE = rf"(?!(?:{_KEYWORDS})(?![A-Za-z0-9_-]))[A-Za-z_][A-Za-z0-9_-]*"
_STRING = r"'(?:[^'\\]|\\['\\])*'"
_INT = r"(?:[+-]?(?:0|[1-9][0-9]*))"
_COMPONENT = rf"(?:\.(?:{_IDENT}|{_STRING})|\[(?:0|[1-9][0-9]*|\*)\])"
# Comparisons: symbols take a string or an integer; the word operators take a string.
_COMPARISON = (rf"(?P<type>{_TYPE}):(?P<path>(?:{_IDENT}|{_STRING}){_COMPONENT}*)(?:"
               rf"{_WS}*(?:!=|==|=|<>|<=|>=|<|>){_WS}*(?P<value>{_STRING}|{_INT})"
               rf"|{_WS}+(?:LIKE|MATCHES|ISSUBSET|ISSUPERSET){_WS}*(?P<text>{_STRING}))")
_ANONYMOUS = re.sub(r"\(\?P<\w+>", "(?:", _COMPARISON)
_QUALIFIER = (rf"(?:WITHIN{_WS}+(?:0|[1-9][0-9]*){_WS}+SECONDS"
              rf"|REPEATS{_WS}+(?:0|[1-9][0-9]*){_WS}+TIMES)")
# One observation: comparisons joined by AND/OR in brackets, with at most one qualifier
# (so the reference's duplicate-qualifier rule cannot apply).
_OBSERVATION = (rf"\[{_WS}*{_ANONYMOUS}(?:{_WS}+(?:AND|OR){_WS}+{_ANONYMOUS})*{_WS}*\]"
                rf"(?:{_WS}+{_QUALIFIER})?")
_PLAIN = re.compile(rf"{_OBSERVATION}(?:{_WS}+(?:AND|OR|FOLLOWEDBY){_WS}+{_OBSERVATION})*")
_ONE = re.compile(_COMPARISON)
_PART = re.compile(rf"{_IDENT}|{_STRING}|\[(?:0|[1-9][0-9]*|\*)\]")

_PatternData = namedtuple("_PatternData", "comparisons")


def problem(pattern: str) -> str:
    """Return why a STIX 2.1 pattern is invalid, or '' when it is valid."""
    if len(pattern) > MAX_LENGTH:
        return f"pattern longer than {MAX_LENGTH:,} characters"
    if _fast_valid(pattern):
        return ""
    return _reference_problem(pattern)


def _fast_valid(pattern: str) -> bool:
    """Return True only when the pattern is certainly valid; False means 'ask the parser'."""
    if _PLAIN.fullmatch(pattern) is None:
        return False
    comparisons: dict[str, list] = {}
    for match in _ONE.finditer(pattern):
        path = _path(match.group("path"))
        value = match.group("value") or match.group("text")
        if path is None or ("hashes" in path and not value.startswith("'")):
            return False  # the reference's hash check expects a string: let it decide
        comparisons.setdefault(match.group("type"), []).append((path, "=", value))
    from stix2patterns.v21 import object_validator

    return not object_validator.verify_object(_PatternData(comparisons))


def _path(text: str) -> list | None:
    """Split an object path as the reference inspector does; None if unsure."""
    parts: list = []
    for token in _PART.findall(text):
        if token.startswith("'"):
            if "\\" in token:
                return None
            parts.append(token[1:-1])
        elif token.startswith("["):
            return None  # list indexes: leave to the parser
        else:
            parts.append(token)
    return parts


@lru_cache(maxsize=65536)
def _reference_problem(pattern: str) -> str:
    from stix2patterns.validator import run_validator  # heavy import, kept off start-up

    try:
        errors = run_validator(pattern, stix_version="2.1")
    except Exception as exc:  # the reference parser fails in its own ways on hostile input
        return f"pattern could not be parsed ({type(exc).__name__})"
    return "; ".join(str(e) for e in errors)[:500]

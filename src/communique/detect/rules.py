"""What the indicator engine runs: a pattern as rules, and the test of one comparison.

A pattern of one observation (``[ … ]``, comparisons joined by AND and OR) is put in
disjunctive normal form; each conjunction is one ``Rule``. As in STIX, the
comparisons of one conjunction are about one object, so a conjunction across
object types is dropped (it never matches).

A comparison holds when *some* value seen at its path satisfies it (``holds``).
Values are compared in their normal form (``normal``: ``normalise`` on both sides,
and protocol names without case, as STIX writes them in lower case). Lists: a path
ending in ``[*]`` stands for every item of the list an event carries there
(``network-traffic:protocols[*]``), ``[N]`` for its item N, counted from 0
(``seen_at``). ``EXISTS`` holds when the event carries any value at the path.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Mapping, Sequence

from communique.detect import normalise
from communique.detect.events import PATHS
from communique.detect.pattern_ast import AnyOf, Comparison, Expression, Observation
from communique.detect.pattern_ast import parse as parse_pattern
from communique.errors import BadRequest

MAX_CONJUNCTIONS = 64
_REGEX_LIMIT = 4096
_INDEX = re.compile(r"(.*)\[(\*|[0-9]+)\]\Z")
_LISTS = frozenset(path for path in PATHS if path.endswith("[*]"))
_PROTOCOLS = "network-traffic:protocols["
# A URL in normal form: http(s), a lower-case host name, a port other than the scheme's, a path,
# maybe a query, no percent escapes.
_URL_CHARS = "A-Za-z0-9._~!$&'()*+,;=:@/-"
_URL_HOST = r"(?=[^/]*[a-z])[a-z0-9-]+(?:\.[a-z0-9-]+)*"
_PORT = r"[1-9][0-9]{0,4}"  # no leading zero; the scheme's default port would be dropped
PLAIN_URL = re.compile(rf"(?:http://{_URL_HOST}(?::(?!80/){_PORT})?|https://{_URL_HOST}(?::(?!443/){_PORT})?)"
                       rf"/[{_URL_CHARS}]*(?:\?[{_URL_CHARS}?]+)?\Z")


@dataclass(frozen=True, slots=True)
class Rule:
    """One conjunction of one indicator's pattern."""

    indicator_id: str
    comparisons: tuple[Comparison, ...]


class Unsupported(Exception):
    """A pattern the engine does not run, and why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def compile_rules(indicator_id: str, pattern: str) -> list[Rule]:
    """Return the rules of a pattern, or raise Unsupported saying why it cannot run."""
    try:
        tree = parse_pattern(pattern)
    except BadRequest as exc:
        raise Unsupported(exc.description) from None
    if not isinstance(tree, Observation):
        raise Unsupported("patterns over several observations or with qualifiers (WITHIN, "
                          "REPEATS, FOLLOWEDBY, START/STOP) are not run by the engine yet")
    rules = []
    for terms in _dnf(tree.expression):
        for comparison in terms:
            check_supported(comparison)
        # STIX 2.1 (§9.2): comparisons joined by AND in one observation must all hold for
        # one object, so an AND across object types never matches.
        if len({c.path.split(":", 1)[0] for c in terms}) == 1:
            rules.append(Rule(indicator_id, tuple(terms)))
    if not rules:
        raise Unsupported("the pattern can never match: comparisons joined by AND name "
                          "different object types, which one object cannot be")
    return rules


def _dnf(expression: Expression) -> list[tuple[Comparison, ...]]:
    """Return the expression as an OR of ANDs of comparisons (bounded in size)."""
    if isinstance(expression, Comparison):
        return [(expression,)]
    if isinstance(expression, AnyOf):
        result = [c for term in expression.terms for c in _dnf(term)]
    else:
        result = [()]
        for term in expression.terms:
            result = [left + right for left in result for right in _dnf(term)]
            if len(result) > MAX_CONJUNCTIONS:
                break
    if len(result) > MAX_CONJUNCTIONS:
        raise Unsupported(f"the pattern expands to more than {MAX_CONJUNCTIONS} alternatives")
    return result


def check_supported(comparison: Comparison) -> None:
    """Raise Unsupported for a comparison the engine cannot decide."""
    path = comparison.path
    if path.count(":") != 1:
        raise Unsupported(f"the object path {path} is not run")
    if "[" in path:
        listed = list_path(path)
        if listed is None or "[" in listed[0][:-3]:
            raise Unsupported(f"list indexes inside object paths ({path}) are not run; events "
                              f"carry these lists: {', '.join(sorted(_LISTS))}")
    if comparison.op == "ISSUPERSET":
        raise Unsupported("ISSUPERSET is not run by the engine yet")
    if comparison.op == "EXISTS" and comparison.negated:
        raise Unsupported("NOT EXISTS is not run by the engine")
    if comparison.op == "ISSUBSET" and path not in normalise.IP_PATHS:
        raise Unsupported("ISSUBSET is run on address paths only")
    if comparison.op == "ISSUBSET":
        try:
            ipaddress.ip_network(str(comparison.value), strict=False)
        except ValueError:
            raise Unsupported(f"{comparison.value!r} is not an address range") from None
    if comparison.op == "MATCHES":
        _regex(str(comparison.value))
    if isinstance(comparison.value, tuple) and comparison.op != "IN":
        raise Unsupported("binary, hex and timestamp literals are not run yet")


def list_path(path: str) -> tuple[str, int | None] | None:
    """Return, for a path into a list events carry, the list's path (``…[*]``) and the index (None for ``[*]``)."""
    found = _INDEX.match(path)
    if found is None or f"{found.group(1)}[*]" not in _LISTS:
        return None
    index = found.group(2)
    return f"{found.group(1)}[*]", None if index == "*" else int(index)


def index_path(path: str) -> str:
    """Return the event path a comparison's values are found under (the list for ``[N]``)."""
    if path.endswith("]") and not path.endswith("[*]"):
        listed = list_path(path)
        if listed is not None:
            return listed[0]
    return path


def seen_at(values: Mapping[str, Sequence[object]], path: str) -> Sequence[object]:
    """Return the values an event holds at a comparison's path (``[N]``: the list's item N)."""
    if path.endswith("]") and not path.endswith("[*]"):
        listed = list_path(path)
        if listed is not None and listed[1] is not None:
            items = values.get(listed[0], ())
            return items[listed[1]:listed[1] + 1]
    return values.get(path, ())


def normal(path: str, value: object) -> object:
    """Return the comparable form of a value seen at ``path``."""
    if path.startswith(_PROTOCOLS) and isinstance(value, str):
        return value.lower()
    if path == "url:value" and isinstance(value, str) and PLAIN_URL.match(value):
        return value  # already as ``normalise.url`` writes it (a test holds the two together)
    return normalise.value(path, value)


def holds(comparison: Comparison, seen: Sequence[object]) -> bool:
    """Return whether some value seen at the comparison's path satisfies it."""
    expected = _expected(comparison)
    return any(_one(comparison.op, value, expected, comparison.path) != comparison.negated
               for value in seen)


def value_holds(comparison: Comparison, value: object) -> bool:
    """Return whether one value (in normal form) satisfies a comparison."""
    return _one(comparison.op, value, _expected(comparison), comparison.path) != comparison.negated


def _expected(comparison: Comparison) -> object:
    if comparison.op in ("=", "!="):
        return normal(comparison.path, comparison.value)
    return comparison.value


def _one(op: str, value: object, expected: object, path: str) -> bool:
    if op == "=":
        return value == expected
    if op == "!=":
        return value != expected
    if op == "EXISTS":
        return True
    if op == "IN":
        return value in {normal(path, v) for v in expected}  # type: ignore[union-attr]
    if op == "LIKE":
        return isinstance(value, str) and like(str(expected)).fullmatch(value) is not None
    if op == "MATCHES":
        return isinstance(value, str) and _regex(str(expected)).search(value) is not None
    if op == "ISSUBSET":
        try:
            return ipaddress.ip_address(value) in ipaddress.ip_network(str(expected),  # type: ignore[arg-type]
                                                                       strict=False)
        except (ValueError, TypeError):
            return False
    try:  # orderings: only between values of one kind
        if isinstance(value, str) != isinstance(expected, str):
            return False
        return {"<": value < expected, "<=": value <= expected,  # type: ignore[operator]
                ">": value > expected, ">=": value >= expected}[op]  # type: ignore[operator]
    except TypeError:
        return False


_LIKE_CACHE: dict[str, re.Pattern] = {}
_REGEX_CACHE: dict[str, re.Pattern] = {}


def like(pattern: str) -> re.Pattern:
    """Return SQL LIKE (% any run, _ one character) as a compiled regular expression."""
    found = _LIKE_CACHE.get(pattern)
    if found is None:
        text = "".join(".*" if ch == "%" else "." if ch == "_" else re.escape(ch)
                       for ch in pattern)
        found = _LIKE_CACHE[pattern] = re.compile(text, re.DOTALL)
    return found


def _regex(pattern: str) -> re.Pattern:
    found = _REGEX_CACHE.get(pattern)
    if found is None:
        if len(pattern) > _REGEX_LIMIT:
            raise Unsupported(f"regular expressions longer than {_REGEX_LIMIT} characters")
        try:
            found = _REGEX_CACHE[pattern] = re.compile(pattern)
        except re.error as exc:
            raise Unsupported(f"the regular expression does not compile: {exc}") from None
    return found

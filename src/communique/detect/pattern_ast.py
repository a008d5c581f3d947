"""STIX 2.1 patterns as a small syntax tree the indicator engine can compile.

The reference grammar (``stix2-patterns``) parses; this module walks its parse
tree into frozen values: comparisons (with their object path written as in
``detect.events.PATHS``), the boolean expressions inside one observation
(``AllOf``/``AnyOf``), and what joins observations (AND, OR, FOLLOWEDBY) with
their qualifiers (WITHIN, REPEATS, START/STOP). Nothing is evaluated here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Union

from communique.errors import BadRequest

HASH_NAMES = {"md5": "MD5", "sha1": "SHA-1", "sha-1": "SHA-1", "sha256": "SHA-256",
              "sha-256": "SHA-256", "sha512": "SHA-512", "sha-512": "SHA-512",
              "sha3-256": "SHA3-256", "sha3-512": "SHA3-512", "ssdeep": "SSDEEP",
              "tlsh": "TLSH"}


@dataclass(frozen=True, slots=True)
class Comparison:
    """``path op value``: op is =, !=, <, <=, >, >=, IN, LIKE, MATCHES, ISSUBSET,
    ISSUPERSET or EXISTS; ``negated`` for a NOT before the operator."""

    path: str
    op: str
    value: object
    negated: bool = False


@dataclass(frozen=True, slots=True)
class AllOf:
    terms: tuple["Expression", ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    terms: tuple["Expression", ...]


Expression = Union[Comparison, AllOf, AnyOf]


@dataclass(frozen=True, slots=True)
class Observation:
    """``[ … ]``: the comparisons one observed object set must satisfy."""

    expression: Expression


@dataclass(frozen=True, slots=True)
class Joined:
    """Observations joined by AND, OR or FOLLOWEDBY."""

    op: str
    parts: tuple["PatternNode", ...]


@dataclass(frozen=True, slots=True)
class Qualified:
    """An observation expression with a qualifier: WITHIN n SECONDS, REPEATS n TIMES,
    START t STOP t (instants as strings, as written)."""

    kind: str
    value: object
    inner: "PatternNode"


PatternNode = Union[Observation, Joined, Qualified]


_WS = r"[ \t\r\n]"
_STRING = r"'(?:[^'\\]|\\['\\])*'"
_KEYWORD = r"(?:AND|OR|NOT|FOLLOWEDBY|LIKE|MATCHES|ISSUBSET|ISSUPERSET|EXISTS|IN|true|false)"
_NAME = rf"(?!{_KEYWORD}(?![A-Za-z0-9_]))[A-Za-z_][A-Za-z0-9_]*"
_TYPE = rf"(?!{_KEYWORD}(?![A-Za-z0-9_-]))[a-z][a-z0-9-]*[a-z0-9]"
_SIMPLE = re.compile(
    rf"(?P<type>{_TYPE}):(?P<path>{_NAME}(?:\.(?:{_NAME}|{_STRING}))*)"
    rf"(?:{_WS}*(?P<op>!=|=){_WS}*(?P<value>{_STRING}|-?(?:0|[1-9][0-9]{{0,17}}))"
    rf"|{_WS}+(?P<word>LIKE|MATCHES|ISSUBSET){_WS}+(?P<text>{_STRING}))")
_JOIN = re.compile(rf"{_WS}+(AND|OR){_WS}+")
_STEP = re.compile(rf"\.({_NAME}|{_STRING})")


def parse(pattern: str) -> PatternNode:
    """Return the syntax tree of a STIX 2.1 pattern, or raise BadRequest saying why not.

    The shape producers emit most, one observation of plain comparisons joined by AND
    and OR, is read by a strict regular expression in microseconds; anything else goes
    to the reference parser (a test checks the two give the same tree).
    """
    fast = _fast(pattern)
    return fast if fast is not None else _reference(pattern)


def _fast(pattern: str) -> PatternNode | None:
    """Return the tree of ``[c AND c OR c …]`` of simple comparisons, or None if unsure."""
    if not (pattern.startswith("[") and pattern.endswith("]")) or len(pattern) > 4096:
        return None
    body, position, groups, current = pattern[1:-1], 0, [], []
    while True:
        found = _SIMPLE.match(body, position)
        if found is None:
            return None
        current.append(_comparison(found))
        position = found.end()
        if position == len(body):
            break
        joint = _JOIN.match(body, position)
        if joint is None:
            return None
        if joint.group(1) == "OR":
            groups.append(current)
            current = []
        position = joint.end()
    groups.append(current)
    terms = tuple(g[0] if len(g) == 1 else AllOf(tuple(g)) for g in groups)
    return Observation(terms[0] if len(terms) == 1 else AnyOf(terms))


def _comparison(found: re.Match) -> Comparison:
    first, _, rest = found.group("path").partition(".")
    steps = [first] + ([_unquote(s) for s in _STEP.findall("." + rest)] if rest else [])
    text, previous = f"{found.group('type')}:{steps[0]}", steps[0]
    for key in steps[1:]:
        if previous == "hashes":
            key = HASH_NAMES.get(key.lower(), key)
        text += f".'{key}'" if not key.isidentifier() or previous == "hashes" else f".{key}"
        previous = key
    if found.group("word"):
        return Comparison(text, found.group("word"), _unquote(found.group("text")))
    raw = found.group("value")
    value: object = _unquote(raw) if raw.startswith("'") else int(raw)
    return Comparison(text, found.group("op"), value)


def _unquote(text: str) -> str:
    if not text.startswith("'"):
        return text
    return text[1:-1].replace("\\'", "'").replace("\\\\", "\\")


@lru_cache(maxsize=4096)
def _reference(pattern: str) -> PatternNode:
    """Parse with the reference grammar (slow: a few hundred microseconds; trees are kept,
    as filing, hunting and exporting the same indicator each ask for one)."""
    from stix2patterns.exceptions import ParseException
    from stix2patterns.v21.pattern import Pattern

    try:
        tree = Pattern(pattern)
    except ParseException as exc:
        raise BadRequest(f"not a STIX 2.1 pattern: {str(exc)[:300]}") from None
    except Exception as exc:  # the parser fails in its own ways on hostile input
        raise BadRequest(f"not a STIX 2.1 pattern ({type(exc).__name__})") from None
    try:
        return tree.visit(_builder())
    except RecursionError:
        raise BadRequest("the pattern nests too deeply to be read") from None


def _builder():  # type: ignore[no-untyped-def]
    """Return a visitor of the reference grammar's parse tree that builds our tree."""
    from stix2patterns.v21.grammars.STIXPatternParser import STIXPatternParser as P
    from stix2patterns.v21.grammars.STIXPatternVisitor import STIXPatternVisitor

    class Builder(STIXPatternVisitor):  # type: ignore[misc]
        def visitPattern(self, ctx):  # type: ignore[no-untyped-def]
            return self.visit(ctx.observationExpressions())

        def _joined(self, ctx, op, children):  # type: ignore[no-untyped-def]
            parts = [self.visit(c) for c in children]
            if len(parts) == 1:
                return parts[0]
            flat: list = []
            for part in parts:  # left-recursive rules nest; keep one level per operator
                flat.extend(part.parts if isinstance(part, Joined) and part.op == op else [part])
            return Joined(op, tuple(flat))

        def visitObservationExpressions(self, ctx):  # type: ignore[no-untyped-def]
            if ctx.observationExpressionOr() is not None:
                return self.visit(ctx.observationExpressionOr())
            return self._joined(ctx, "FOLLOWEDBY", ctx.observationExpressions())

        def visitObservationExpressionOr(self, ctx):  # type: ignore[no-untyped-def]
            if ctx.observationExpressionAnd() is not None:
                return self.visit(ctx.observationExpressionAnd())
            return self._joined(ctx, "OR", ctx.observationExpressionOr())

        def visitObservationExpressionAnd(self, ctx):  # type: ignore[no-untyped-def]
            if ctx.observationExpression() is not None:
                return self.visit(ctx.observationExpression())
            return self._joined(ctx, "AND", ctx.observationExpressionAnd())

        def visitObservationExpressionSimple(self, ctx):  # type: ignore[no-untyped-def]
            return Observation(self.visit(ctx.comparisonExpression()))

        def visitObservationExpressionCompound(self, ctx):  # type: ignore[no-untyped-def]
            return self.visit(ctx.observationExpressions())

        def visitObservationExpressionWithin(self, ctx):  # type: ignore[no-untyped-def]
            q = ctx.withinQualifier()
            number = q.IntPosLiteral() or q.FloatPosLiteral()
            return Qualified("WITHIN", float(number.getText()), self.visit(ctx.observationExpression()))

        def visitObservationExpressionRepeated(self, ctx):  # type: ignore[no-untyped-def]
            q = ctx.repeatedQualifier()
            return Qualified("REPEATS", int(q.IntPosLiteral().getText()),
                             self.visit(ctx.observationExpression()))

        def visitObservationExpressionStartStop(self, ctx):  # type: ignore[no-untyped-def]
            q = ctx.startStopQualifier()
            start, stop = (t.getText()[2:-1] for t in q.TimestampLiteral())
            return Qualified("STARTSTOP", (start, stop), self.visit(ctx.observationExpression()))

        def visitComparisonExpression(self, ctx):  # type: ignore[no-untyped-def]
            if ctx.comparisonExpressionAnd() is not None:
                return self.visit(ctx.comparisonExpressionAnd())
            terms = [self.visit(c) for c in ctx.comparisonExpression()]
            return AnyOf(tuple(t for term in terms
                               for t in (term.terms if isinstance(term, AnyOf) else (term,))))

        def visitComparisonExpressionAnd(self, ctx):  # type: ignore[no-untyped-def]
            if ctx.propTest() is not None:
                return self.visit(ctx.propTest())
            terms = [self.visit(c) for c in ctx.comparisonExpressionAnd()]
            return AllOf(tuple(t for term in terms
                               for t in (term.terms if isinstance(term, AllOf) else (term,))))

        def visitPropTestParen(self, ctx):  # type: ignore[no-untyped-def]
            return self.visit(ctx.comparisonExpression())

        def visitPropTestEqual(self, ctx):  # type: ignore[no-untyped-def]
            op = "=" if ctx.EQ() is not None else "!="
            return Comparison(_path(ctx.objectPath()), op, _literal(ctx.primitiveLiteral()),
                              ctx.NOT() is not None)

        def visitPropTestOrder(self, ctx):  # type: ignore[no-untyped-def]
            op = next(t.getText() for t in (ctx.GT(), ctx.LT(), ctx.GE(), ctx.LE()) if t)
            return Comparison(_path(ctx.objectPath()), op, _literal(ctx.orderableLiteral()),
                              ctx.NOT() is not None)

        def visitPropTestSet(self, ctx):  # type: ignore[no-untyped-def]
            values = tuple(_literal(c) for c in ctx.setLiteral().primitiveLiteral())
            return Comparison(_path(ctx.objectPath()), "IN", values, ctx.NOT() is not None)

        def visitPropTestLike(self, ctx):  # type: ignore[no-untyped-def]
            return Comparison(_path(ctx.objectPath()), "LIKE", _string(ctx.StringLiteral()),
                              ctx.NOT() is not None)

        def visitPropTestRegex(self, ctx):  # type: ignore[no-untyped-def]
            return Comparison(_path(ctx.objectPath()), "MATCHES", _string(ctx.StringLiteral()),
                              ctx.NOT() is not None)

        def visitPropTestIsSubset(self, ctx):  # type: ignore[no-untyped-def]
            return Comparison(_path(ctx.objectPath()), "ISSUBSET", _string(ctx.StringLiteral()),
                              ctx.NOT() is not None)

        def visitPropTestIsSuperset(self, ctx):  # type: ignore[no-untyped-def]
            return Comparison(_path(ctx.objectPath()), "ISSUPERSET",
                              _string(ctx.StringLiteral()), ctx.NOT() is not None)

        def visitPropTestExists(self, ctx):  # type: ignore[no-untyped-def]
            return Comparison(_path(ctx.objectPath()), "EXISTS", None, ctx.NOT() is not None)

    del P
    return Builder()


def _string(token) -> str:  # type: ignore[no-untyped-def]
    """Return the text of a quoted string token, its escapes (\\' and \\\\) undone."""
    text = token.getText()[1:-1]
    return text.replace("\\'", "'").replace("\\\\", "\\")


def _literal(ctx) -> object:  # type: ignore[no-untyped-def]
    """Return a literal's value: str, int, float, bool, or ('b64'|'hex'|'t', text)."""
    if hasattr(ctx, "BoolLiteral") and ctx.BoolLiteral() is not None:
        return ctx.BoolLiteral().getText().lower() == "true"
    inner = ctx.orderableLiteral() if hasattr(ctx, "orderableLiteral") and \
        ctx.orderableLiteral() is not None else ctx
    if inner.StringLiteral() is not None:
        return _string(inner.StringLiteral())
    for getter in (inner.IntPosLiteral, inner.IntNegLiteral):
        if getter() is not None:
            return int(getter().getText())
    for getter in (inner.FloatPosLiteral, inner.FloatNegLiteral):
        if getter() is not None:
            return float(getter().getText())
    if inner.BinaryLiteral() is not None:
        return ("b64", inner.BinaryLiteral().getText()[2:-1])
    if inner.HexLiteral() is not None:
        return ("hex", inner.HexLiteral().getText()[2:-1])
    return ("t", inner.TimestampLiteral().getText()[2:-1])


def _path(ctx) -> str:  # type: ignore[no-untyped-def]
    """Return an object path as ``type:prop.key.'quoted'[*]``; hash names made standard."""
    first = ctx.firstPathComponent()
    name = (_string(first.StringLiteral()) if first.StringLiteral() is not None
            else first.getText())
    text = f"{ctx.objectType().getText()}:{name}"
    previous = name
    component = ctx.objectPathComponent()
    for step in _steps(component):
        if hasattr(step, "ASTERISK"):
            text += "[*]" if step.ASTERISK() is not None else \
                f"[{(step.IntPosLiteral() or step.IntNegLiteral()).getText()}]"
            continue
        key = _string(step.StringLiteral()) if step.StringLiteral() is not None \
            else step.IdentifierWithoutHyphen().getText()
        if previous == "hashes":
            key = HASH_NAMES.get(key.lower(), key)
        text += f".'{key}'" if not key.isidentifier() or previous == "hashes" else f".{key}"
        previous = key
    return text


def _steps(component) -> list:  # type: ignore[no-untyped-def]
    """Return the path steps of an objectPathComponent in order (PathStep nests them)."""
    if component is None:
        return []
    if hasattr(component, "objectPathComponent") and not hasattr(component, "DOT") \
            and not hasattr(component, "LBRACK"):
        return [s for child in component.objectPathComponent() for s in _steps(child)]
    return [component]

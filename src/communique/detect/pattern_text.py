"""Writing a parsed observation back as STIX pattern text (``pattern_ast`` the other way).

The sequencer files each observation of a pattern with the index engine, which takes
pattern text; the text written here reads back as the same tree.
"""

from __future__ import annotations

from decimal import Decimal

from communique.detect.pattern_ast import AllOf, AnyOf, Comparison, Expression

_PREFIXES = {"b64": "b", "hex": "h", "t": "t"}  # binary, hex and timestamp literals


def expression_text(expression: Expression) -> str:
    """Write the comparisons of an observation back as pattern text.

    Parentheses only around an OR inside an AND (AND binds tighter), so that the
    common shapes stay on the parser's fast path.
    """
    if isinstance(expression, Comparison):
        return _comparison_text(expression)
    if isinstance(expression, AllOf):
        return " AND ".join(f"({expression_text(t)})" if isinstance(t, AnyOf)
                            else expression_text(t) for t in expression.terms)
    return " OR ".join(expression_text(term) for term in expression.terms)


def _comparison_text(comparison: Comparison) -> str:
    negation = "NOT " if comparison.negated else ""
    if comparison.op == "EXISTS":
        return f"{negation}EXISTS {comparison.path}"
    if comparison.op == "IN":
        values: tuple = comparison.value  # type: ignore[assignment]
        value = "(" + ", ".join(_literal(v) for v in values) + ")"
    else:
        value = _literal(comparison.value)
    return f"{comparison.path} {negation}{comparison.op} {value}"


def _literal(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = format(Decimal(repr(value)), "f")  # the grammar has no exponent form
        return text if "." in text else text + ".0"
    if isinstance(value, tuple):
        kind, text = value
        return f"{_PREFIXES[kind]}'{text}'"
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"

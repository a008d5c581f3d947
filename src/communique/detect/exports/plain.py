"""A plain list, one value a line, for firewalls and blocklists.

Comment lines start with ``#``: the TLP level and its handling rule first, a count
at the end. Types may be mixed in one list (addresses, ranges, domains, URLs,
hashes, e-mail addresses, as the items hold them); a caller that wants one type
filters the items first. A value is written once, however many indicators hold it:
some loaders (``ipset restore`` among them) refuse a repeated entry, so the values
written are held in memory for the length of the export.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING, BinaryIO

from communique.detect.exports.common import Heading, Lines, closing, each_entry

if TYPE_CHECKING:
    from communique.detect.exports import Item

_SKIPPED = {"comment-like": "values that start with # and would read as comments"}


def write(items: Iterable[Item], out: BinaryIO, heading: Heading) -> int:
    """Write the items' values one a line; return the number of lines of values."""
    lines, left_out, seen = Lines(out), Counter[str](), set[str]()
    for text in heading.comments("Blocklist"):
        lines.add(f"# {text}")
    for _item, entry in each_entry(items, heading.level, left_out):
        if entry.value.startswith("#"):  # an e-mail address may; it would read as a comment
            left_out["comment-like"] += 1
        elif entry.value not in seen:
            seen.add(entry.value)
            lines.add(entry.value)
    lines.add("# " + closing(len(seen), "values", left_out, _SKIPPED))
    lines.flush()
    return len(seen)

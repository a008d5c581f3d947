"""CSV for SIEMs and spreadsheets: one row per (indicator, value), RFC 4180.

Columns ``value,type,indicator_id,name,tlp,score,producer``; the first row names
them, so that any CSV reader takes the file as it is. ``type`` is one of ``ipv4
ipv6 ipv4-net ipv6-net domain url email md5 sha1 sha256 sha512 x509-md5 x509-sha1
x509-sha256``. The TLP level is carried in
the ``tlp`` column, each row's own (``TLP:GREEN``…), rather than in a comment row,
which no CSV standard knows and many importers would take for data. Rows end in
CRLF; the text is UTF-8 without a byte-order mark.

Spreadsheets run a cell that starts with ``=``, ``+``, ``-`` or ``@`` (and some a tab
or carriage return) as a formula: such a cell gets a leading ``'``; a reader that
wants the text back drops a ``'`` that stands before one of those characters. Names
and producers are put on one line; values never hold line breaks (a value with one
is left out as malformed).
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING, BinaryIO

from communique.detect.exports.common import Heading, each_entry, one_line

if TYPE_CHECKING:
    from communique.detect.exports import Item

COLUMNS = ("value", "type", "indicator_id", "name", "tlp", "score", "producer")
_FORMULA = ("=", "+", "-", "@", "\t", "\r")
_BATCH = 1000


def write(items: Iterable[Item], out: BinaryIO, heading: Heading) -> int:
    """Write a CSV file for ``items``; return the number of rows after the header."""
    buffer = io.StringIO()
    rows = csv.writer(buffer, lineterminator="\r\n")
    rows.writerow(COLUMNS)
    written = 0
    for item, entry in each_entry(items, heading.level, Counter()):
        rows.writerow([cell(entry.value), entry.kind, cell(item.id), cell(one_line(item.name, 500)),
                       item.level.label, f"{item.score:.1f}", cell(one_line(item.producer))])
        written += 1
        if written % _BATCH == 0:
            out.write(buffer.getvalue().encode("utf-8", "replace"))
            buffer.seek(0)
            buffer.truncate()
    out.write(buffer.getvalue().encode("utf-8", "replace"))
    return written


def cell(text: str) -> str:
    """Return text safe from spreadsheet formulas: a leading ``'`` before ``= + - @``."""
    return f"'{text}" if text.startswith(_FORMULA) else text

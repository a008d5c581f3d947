"""JSON lines read through the caller's mapping: {field path: STIX path}.

A field path is dotted (``client.ip``); a key that itself contains dots
(``id.orig_h``) is found too, and a list on the way fans out (``answers.data``
takes the ``data`` of every answer). The optional ``"@time"`` entry names the
time field (ISO 8601, or epoch seconds, milliseconds, microseconds or
nanoseconds, told apart by size). Values go under their STIX path checked the
way that path needs: an address under the path of its IP version, a host name
that is an address under the address path, a port as an integer.

Skipped, by reason: "invalid JSON", "JSON value is not an object", "no
observables" (none of the mapped fields is there).
"""

from __future__ import annotations

from typing import Iterable, Iterator

from communique.detect.events import Event
from communique.detect.logs import times
from communique.detect.logs.jsonobj import first, load_object, lookup
from communique.detect.logs.record import Context, Record
from communique.detect.logs.sources import Line

TIME_KEY = "@time"


def events(lines: Iterable[Line], ctx: Context) -> Iterator[Event]:
    """Yield the events of a JSON lines file, by the context's mapping."""
    mapping = dict(ctx.mapping or {})
    time_field = mapping.pop(TIME_KEY, None)
    for line in lines:
        if not line.text.strip():
            continue
        document = load_object(line, ctx)
        if document is None:
            continue
        record = Record()
        if time_field:
            record.set_time(first(document, time_field), times.any_value)
        for field, path in mapping.items():
            for value in lookup(document, field):
                record.add_mapped(path, value)
        event = ctx.emit(record, line)
        if event is not None:
            yield event

"""Record calls as column fields: what each call makes of a value, quickly when it can.

A reader that walks a record into columns keeps, for each value, the ``Record`` call
it would have been given, its *role*: ``("host",)``, ``("add", path)``,
``("hash", algorithm, kind)``… A role's ``Field`` derives a value by making that call
on a fresh record (``quick`` first, for the commonest shapes), picks the values that
are *plain* (they add themselves, in normal form: see ``Field.plain``) and tells at C
speed when a whole dense column is clean (``bulk``).
"""

from __future__ import annotations

from typing import Callable, Hashable

from communique.detect import normalise
from communique.detect.columns import NOTHING, Derived, Field, Pairs, dotted_quads, plain_hosts
from communique.detect.logs import observables, quick, zeek_fields
from communique.detect.logs.record import Record

Role = tuple  # ("host",), ("add", path), ("hash", algorithm, kind)…: a Record method and its arguments
_IPS = (observables.IPV4, observables.IPV6)
_HOSTS = (*_IPS, observables.DOMAIN)
_HASHES = tuple(observables.HASH_BY_LENGTH.values())


def derive_with(apply: Callable[[Record, object], None]) -> Callable[[object], Derived]:
    """Return a derivation that runs ``apply`` on a fresh record."""
    def derive(value: object) -> Derived:
        record = Record()
        apply(record, value)
        return pairs_of(record), tuple(record.notes)
    return derive


def pairs_of(record: Record) -> Pairs:
    """Return the (path, value) pairs of a record."""
    if not record.values:
        return NOTHING[0]
    return tuple((path, value) for path, seen in record.values.items() for value in seen)


def apply_role(record: Record, role: Role, value: object) -> None:
    """Make the Record call a role names."""
    kind = role[0]
    if kind == "host":
        record.add_host(value)
    elif kind == "add":
        record.add(role[1], value)
    elif kind == "url":
        record.add_url(value)
    elif kind == "hash":
        record.add_hash(value, role[1], kind=role[2])
    elif kind == "email":
        record.add_email(value, role[1])
    elif kind == "ip":
        record.add_ip(value)
    elif kind == "endpoint":
        record.add_endpoint(role[1], value)
    elif kind == "port":
        record.add_port(role[1], value)
    elif kind == "answer":
        if isinstance(value, str) and value:
            zeek_fields.add_answer(record, value)
    else:
        raise ValueError(f"unknown role {role!r}")


def role_deriver(role: Role) -> Callable[[object], Derived]:
    """Return how a value given to one Record call is derived: quickly when it can be."""
    slow = derive_with(lambda record, value: apply_role(record, role, value))

    def derive(value: object) -> Derived:
        return quick.derive(role, value) or slow(value)
    return derive


def role_plain(role: Role) -> tuple[Callable[[set], set] | None, tuple[str, ...]]:
    """Return how to pick, quickly, the values a role adds as they are (see ``Field.plain``),
    and the paths it may add them under."""
    kind = role[0]
    if kind == "endpoint":
        return plain_hosts, (*_HOSTS, f"network-traffic:{role[1]}_ref.value")
    if kind in ("host", "answer"):
        return plain_hosts, _HOSTS
    if kind == "ip":
        return dotted_quads, (observables.IPV4,)
    if kind == "port":
        return _port_numbers, role_paths(role)
    if kind == "add" and _as_written(role[1]):
        return _texts, (role[1],)
    if kind == "hash" and role[1]:
        return _lower_texts, role_paths(role)
    return None, ()


def role_notes(role: Role) -> bool:
    """Tell whether a role's Record call may note a value (``add``, ``answer``, ``email`` and
    ``ip`` never do)."""
    return role[0] not in ("add", "answer", "email", "ip")


def role_bulk(role: Role) -> Callable[[list], bool] | None:
    """Return how to tell at C speed that a dense column of a role's values is all clean."""
    if role[0] == "port":
        return _port_numbers_all
    if role[0] == "add":
        return texts_all
    return None


def _port_numbers_all(values: list) -> bool:
    try:  # all integers from 0 to 65535 (a None or a string makes min and max fail)
        return min(values) >= 0 and max(values) <= 65535
    except TypeError:
        return False


def texts_all(values: list) -> bool:
    """Tell whether every value is a string, and none is empty."""
    try:
        "".join(values)
    except TypeError:
        return False
    return "" not in values


def _as_written(path: str) -> bool:
    """Tell a path whose values are compared as written (see ``normalise``)."""
    return not (path in normalise.IP_PATHS or path in (observables.DOMAIN, observables.URL)
                or ":hashes." in path or path.endswith(("-addr:value", "_ref.value"))
                or path.startswith("network-traffic:protocols"))


def _port_numbers(values: set) -> set:
    return {value for value in values if type(value) is int and 0 <= value <= 65535}


def _texts(values: set) -> set:
    return {value for value in values if type(value) is str and value}


def _lower_texts(values: set) -> set:
    """Hashes already in normal form: lower case, nothing to strip (so not "-" either)."""
    return {value for value in values
            if type(value) is str and value.islower() and value == value.strip()}


def role_paths(role: Role) -> tuple[str, ...]:
    """Return the paths a role may add values under."""
    kind = role[0]
    if kind in ("add", "email"):
        return (role[1],)
    if kind == "hash":
        names = (role[1],) if role[1] else _HASHES
        return tuple(f"{role[2]}:hashes.'{name}'" for name in names)
    if kind == "endpoint":
        return (*_HOSTS, f"network-traffic:{role[1]}_ref.value")
    if kind == "port":
        return (f"network-traffic:{role[1]}_port",)
    return {"host": _HOSTS, "answer": _HOSTS, "url": (*_HOSTS, observables.URL), "ip": _IPS}[kind]


class Fields:
    """The fields of one scan, made once so that their caches last from batch to batch."""

    def __init__(self) -> None:
        self._made: dict[Hashable, Field] = {}

    def role(self, role: Role) -> Field:
        """Return the field of the values given to one Record call."""
        found = self._made.get(role)
        if found is None:
            plain, plain_paths = role_plain(role)
            found = self._made[role] = Field(role, role_paths(role), role_deriver(role), plain,
                                             plain_paths, role_bulk(role), role_notes(role))
        return found

    def get(self, key: Hashable, make: Callable[[], Field]) -> Field:
        """Return the field of a key, made the first time."""
        found = self._made.get(key)
        if found is None:
            found = self._made[key] = make()
        return found

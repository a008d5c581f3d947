"""The sequencer: patterns over several observations, verdicts equal to the OASIS matcher."""

from __future__ import annotations

import random
import uuid
from functools import lru_cache

import pytest

from communique import timestamps
from communique.detect.events import Event
from communique.detect.pattern_ast import Observation, parse
from communique.detect.temporal import Sequencer
from communique.detect.pattern_text import expression_text
from communique.detect.temporal_plan import MAX_EVENTS, MAX_OBSERVATIONS

BASE = timestamps.parse("2026-11-27T10:00:00Z")
S = 1_000_000  # microseconds in a second
TRAFFIC = ("network-traffic:dst_ref.value", "network-traffic:dst_port")

A = "[domain-name:value = 'a.example']"
B = "[ipv4-addr:value = '198.51.100.1']"
C = "[network-traffic:dst_port = 443]"
D = "[domain-name:value LIKE '%.example' AND domain-name:value != 'a.example']"
E = "[ipv4-addr:value ISSUBSET '203.0.113.0/24' OR url:value MATCHES '^https://']"
NEVER = "[domain-name:value = 'c.org' AND ipv4-addr:value = '203.0.113.5']"  # two types
LEAVES = [A, B, C, D, E, A, B, NEVER]


# -- the same events, as the sequencer and as the reference matcher see them ------------
def event(time_us: int | None, values: dict[str, object]) -> Event:
    """The event a log reader makes: a referenced address listed under its own path too."""
    paths: dict[str, tuple] = {}
    for path, value in values.items():
        paths[path] = paths.get(path, ()) + (value,)
    if TRAFFIC[0] in values:
        paths["ipv4-addr:value"] = paths.get("ipv4-addr:value", ()) + (values[TRAFFIC[0]],)
    return Event(time_us, paths, "test")


def bundle(records: list[tuple[int, dict[str, object]]]) -> dict:
    """One STIX 2.1 bundle: an observed-data object per record (first = last observed,
    number_observed 1), each referring to its own SCOs."""
    objects: list[dict] = []

    def add(obj: dict) -> str:
        obj["id"] = f"{obj['type']}--{uuid.UUID(int=len(objects) + 1)}"
        obj["spec_version"] = "2.1"
        objects.append(obj)
        return obj["id"]

    sightings = []
    for n, (time_us, values) in enumerate(records):
        refs = []
        for path, value in values.items():
            if path == TRAFFIC[0]:
                address = add({"type": "ipv4-addr", "value": value})
                refs += [address, add({"type": "network-traffic", "protocols": ["tcp"],
                                       "dst_ref": address, "dst_port": values[TRAFFIC[1]]})]
            elif path != TRAFFIC[1]:
                kind, prop = path.split(":", 1)
                refs.append(add({"type": kind, prop: value}))
        stamp = timestamps.format_us(time_us)
        sightings.append({"type": "observed-data", "spec_version": "2.1",
                          "id": f"observed-data--{uuid.UUID(int=(1 << 64) + n)}",
                          "created": stamp, "modified": stamp, "first_observed": stamp,
                          "last_observed": stamp, "number_observed": 1, "object_refs": refs})
    return {"type": "bundle", "id": f"bundle--{uuid.UUID(int=7)}", "objects": sightings + objects}


@lru_cache(maxsize=4096)
def reference(pattern: str):  # type: ignore[no-untyped-def]
    from stix2matcher.matcher import Pattern

    return Pattern(pattern, stix_version="2.1")


def theirs(pattern: str, records: list[tuple[int, dict[str, object]]]) -> bool:
    return bool(records) and bool(reference(pattern).match([bundle(records)]))


def ours(pattern: str, records: list[tuple[int | None, dict[str, object]]],
         rng: random.Random | None = None) -> Sequencer:
    """Run one pattern over the records, fed in random batches."""
    sequencer = Sequencer()
    assert sequencer.add("i", pattern), sequencer.unsupported
    return feed(sequencer, records, rng)


def feed(sequencer: Sequencer, records: list[tuple[int | None, dict[str, object]]],
         rng: random.Random | None = None) -> Sequencer:
    events = [event(t, v) for t, v in records]
    while events:
        cut = rng.randint(1, len(events)) if rng else len(events)
        sequencer.feed(events[:cut])
        events = events[cut:]
    return sequencer


# -- generated cases -------------------------------------------------------------------
def generated_values(rng: random.Random) -> dict[str, object]:
    values: dict[str, object] = {}
    while not values:
        if rng.random() < 0.45:
            values["domain-name:value"] = rng.choice(["a.example", "b.example", "c.org"])
        if rng.random() < 0.35:
            values["ipv4-addr:value"] = rng.choice(["198.51.100.1", "198.51.100.2",
                                                    "203.0.113.5"])
        if rng.random() < 0.3:
            values[TRAFFIC[0]] = rng.choice(["198.51.100.1", "203.0.113.9"])
            values[TRAFFIC[1]] = rng.choice([443, 80])
        if rng.random() < 0.2:
            values["url:value"] = rng.choice(["https://a.example/x", "http://b.example/"])
    return values


def generated_times(rng: random.Random, count: int) -> list[int]:
    """Times on a one-second grid (often equal, so edges are hit), now and then a half."""
    times = [rng.randint(0, 12) * S + (S // 2 if rng.random() < 0.1 else 0)
             for _ in range(count)]
    return [BASE + t for t in sorted(times)]


def generated_pattern(rng: random.Random, depth: int, *, timeless: bool = False) -> str:
    roll = rng.random()
    if depth == 0 or roll < 0.3:
        return rng.choice(LEAVES)
    if roll < 0.68:
        ops = ["AND", "OR"] if timeless else ["AND", "OR", "FOLLOWEDBY"]
        op = rng.choice(ops)
        parts = [generated_pattern(rng, depth - 1, timeless=timeless)
                 for _ in range(rng.choice([2, 2, 3]))]
        return "(" + f" {op} ".join(parts) + ")"
    inner = generated_pattern(rng, depth - 1, timeless=timeless)
    kind = "REPEATS" if timeless else rng.choice(["WITHIN", "REPEATS", "STARTSTOP"])
    if kind == "WITHIN":
        return f"{inner} WITHIN {rng.choice(['1', '2', '3', '5', '2.5', '0.5'])} SECONDS"
    if kind == "REPEATS":
        return f"{inner} REPEATS {rng.choice([2, 2, 3])} TIMES"
    start = BASE + rng.randint(0, 10) * S
    stop = start + rng.randint(0, 6) * S
    return (f"{inner} START t'{timestamps.format_us(start)}' "
            f"STOP t'{timestamps.format_us(stop)}'")


def test_verdicts_equal_the_reference_matcher() -> None:
    """Thousands of generated patterns and event sequences: both say match, or both not;
    every match reported is itself a match for the reference matcher."""
    rng = random.Random(2026)
    matched = checked = 0
    shapes = {"AND": 0, "OR": 0, "FOLLOWEDBY": 0, "WITHIN": 0, "REPEATS": 0, "START": 0}
    for _ in range(3000):
        pattern = generated_pattern(rng, rng.choice([1, 2, 2, 3]))
        times = generated_times(rng, rng.randint(1, 8))
        records = [(t, generated_values(rng)) for t in times]
        sequencer = Sequencer()
        if not sequencer.add("i", pattern):
            assert "can never match" in sequencer.unsupported["i"], sequencer.unsupported
            assert not theirs(pattern, records), pattern
            continue
        run = feed(sequencer, records, rng)
        verdict = "i" in run.found
        assert verdict == theirs(pattern, records), (pattern, records)
        matched += verdict
        for shape in shapes:
            shapes[shape] += verdict and shape in pattern
        for example in run.found["i"].examples[:1] if verdict else []:
            used = [records[p] for p in example.positions]
            assert theirs(pattern, used), (pattern, used)  # the events reported do match
            checked += 1
    assert 800 < matched < 2200 and checked == matched
    assert min(shapes.values()) > 40, shapes  # every operator and qualifier matched often


def test_events_without_time_fill_unconstrained_observations() -> None:
    """With no WITHIN, START/STOP or FOLLOWEDBY, time does not matter: events without one
    give the verdict the matcher gives them at any time."""
    rng = random.Random(99)
    matched = 0
    for _ in range(500):
        pattern = generated_pattern(rng, rng.choice([1, 2, 3]), timeless=True)
        records = [(None if rng.random() < 0.5 else BASE + n * S, generated_values(rng))
                   for n in range(rng.randint(1, 7))]
        sequencer = Sequencer()
        if not sequencer.add("i", pattern):
            continue
        verdict = "i" in feed(sequencer, records, rng).found
        anytime = [(BASE + rng.randint(0, 99) * S, values) for _, values in records]
        assert verdict == theirs(pattern, anytime), (pattern, records)
        matched += verdict
    assert 100 < matched < 400


def test_events_without_time_never_fill_timed_observations() -> None:
    untimed = [(None, {"domain-name:value": "a.example"}),
               (None, {"ipv4-addr:value": "198.51.100.1"})]
    assert "i" in ours(f"{A} AND {B}", untimed).found
    for pattern in (f"({A} AND {B}) WITHIN 5 SECONDS", f"{A} FOLLOWEDBY {B}",
                    f"({A} AND {B}) START t'2000-01-01T00:00:00Z' STOP t'2100-01-01T00:00:00Z'"):
        assert not ours(pattern, untimed).found, pattern
    mixed = [(None, {"domain-name:value": "a.example"}),
             (BASE, {"ipv4-addr:value": "198.51.100.1"})]
    assert "i" in ours(f"{A} AND ({B} WITHIN 1 SECONDS)", mixed).found


# -- edges, each also checked against the reference matcher -----------------------------
def a_at(t: int) -> tuple[int, dict[str, object]]:
    return BASE + t, {"domain-name:value": "a.example"}


def b_at(t: int) -> tuple[int, dict[str, object]]:
    return BASE + t, {"ipv4-addr:value": "198.51.100.1"}


def agree(pattern: str, records: list, expected: bool) -> None:
    assert theirs(pattern, records) is expected, ("reference", pattern)
    assert ("i" in ours(pattern, records).found) is expected, pattern


@pytest.mark.parametrize("gap, expected", [(5 * S, True), (5 * S + 1, False), (0, True)])
def test_within_includes_its_boundary(gap: int, expected: bool) -> None:
    agree(f"({A} AND {B}) WITHIN 5 SECONDS", [a_at(0), b_at(gap)], expected)
    agree(f"({A} FOLLOWEDBY {B}) WITHIN 5 SECONDS", [a_at(0), b_at(gap)], expected)


def test_within_fractions_of_a_second() -> None:
    agree(f"({A} AND {B}) WITHIN 0.5 SECONDS", [a_at(0), b_at(S // 2)], True)
    agree(f"({A} AND {B}) WITHIN 0.5 SECONDS", [a_at(0), b_at(S // 2 + 1)], False)


@pytest.mark.parametrize("order, expected", [("ab", True), ("ba", False), ("same", True)])
def test_followedby_order(order: str, expected: bool) -> None:
    records = {"ab": [a_at(0), b_at(S)], "ba": [b_at(0), a_at(S)],
               "same": [b_at(S), a_at(S)]}[order]
    agree(f"{A} FOLLOWEDBY {B}", records, expected)


@pytest.mark.parametrize("offset, expected", [(-1, False), (0, True), (5 * S - 1, True),
                                              (5 * S, False)])
def test_start_is_included_and_stop_is_not(offset: int, expected: bool) -> None:
    start, stop = timestamps.format_us(BASE), timestamps.format_us(BASE + 5 * S)
    agree(f"{A} START t'{start}' STOP t'{stop}'", [a_at(offset)], expected)


@pytest.mark.parametrize("count, expected", [(2, False), (3, True)])
def test_repeats_counts_distinct_events(count: int, expected: bool) -> None:
    agree(f"{A} REPEATS 3 TIMES", [a_at(n * S) for n in range(count)], expected)


def test_one_event_never_fills_two_observations_of_a_match() -> None:
    both = (BASE, {"domain-name:value": "a.example", "ipv4-addr:value": "198.51.100.1"})
    agree(f"{A} AND {B}", [both], False)
    agree(f"{A} AND {B}", [both, b_at(S)], True)
    agree(f"({A} OR {B}) REPEATS 2 TIMES", [both], False)


def test_nested_qualifiers() -> None:
    pattern = f"({A} REPEATS 2 TIMES WITHIN 2 SECONDS) FOLLOWEDBY {B}"
    agree(pattern, [a_at(0), a_at(3 * S), b_at(4 * S)], False)
    agree(pattern, [a_at(0), a_at(3 * S), a_at(5 * S), b_at(5 * S)], True)
    agree(f"({A} WITHIN 1 SECONDS) REPEATS 2 TIMES", [a_at(0), a_at(60 * S)], True)


# -- streaming: counts, batches, memory -------------------------------------------------
def test_matches_are_counted_without_sharing_events() -> None:
    sequencer = Sequencer()
    sequencer.add("seq", f"{A} FOLLOWEDBY {B}")
    records = [a_at(0), b_at(S), a_at(2 * S), b_at(3 * S), b_at(4 * S), a_at(5 * S)]
    found = sequencer.feed([event(t, v) for t, v in records])
    assert [m.positions for m in found] == [(0, 1), (2, 3)]
    tally = sequencer.found["seq"]
    assert (tally.count, tally.first_us, tally.last_us) == (2, BASE, BASE + 3 * S)
    assert sequencer.kept == 1  # the last a.example waits for an address


def test_batches_do_not_change_what_is_found() -> None:
    rng = random.Random(5)
    patterns = [generated_pattern(rng, 2) for _ in range(40)]
    records = [(t, generated_values(rng)) for t in generated_times(rng, 60)]
    events = [event(t, v) for t, v in records]

    def run(sizes: int) -> list:
        sequencer = Sequencer()
        for n, pattern in enumerate(patterns):
            sequencer.add(f"i{n}", pattern)
        found = []
        for start in range(0, len(events), sizes):
            found += sequencer.feed(events[start:start + sizes])
        return [(m.indicator_id, m.positions) for m in found]

    whole = run(len(events))
    assert whole and run(1) == whole and run(7) == whole


def test_memory_is_bounded_by_within() -> None:
    sequencer = Sequencer()
    sequencer.add("w", f"({A} FOLLOWEDBY {B}) WITHIN 10 SECONDS")
    sequencer.add("r", f"{B} REPEATS 5 TIMES WITHIN 3 SECONDS")
    most = 0
    for batch in range(100):  # a.example every second for 100 000 s: nothing ever follows
        sequencer.feed([event(*a_at((batch * 1000 + n) * S)) for n in range(1000)])
        most = max(most, sequencer.kept)
    assert most <= 11 and not sequencer.found and not sequencer.dropped
    assert sequencer.peak <= 64  # pruned within a batch too, as events pile up
    sequencer.feed([event(*b_at(100_000 * S))])
    assert sequencer.found["w"].count == 1


def test_a_dense_repeat_stays_cheap() -> None:
    """Every event fills the observation: each search sees only the last few seconds."""
    sequencer = Sequencer()
    sequencer.add("burst", f"{A} REPEATS 30 TIMES WITHIN 1 SECONDS")
    sequencer.feed([event(*a_at(n * S // 20)) for n in range(20_000)])  # 20 a second
    assert not sequencer.found and sequencer.peak <= 128 and not sequencer.exhausted
    sequencer.feed([event(*a_at(1000 * S + n)) for n in range(30)])
    assert sequencer.found["burst"].count == 1


def test_memory_is_bounded_by_the_cap_which_is_reported() -> None:
    sequencer = Sequencer(keep=100)
    sequencer.add("both", f"{A} AND {B}")
    sequencer.feed([event(*a_at(n)) for n in range(5000)])
    assert sequencer.kept == 100 and sequencer.dropped == {"both": 4900}
    sequencer.feed([event(*b_at(6000))])
    assert sequencer.found["both"].count == 1 and sequencer.kept == 99


def test_observations_behind_their_stop_are_dropped() -> None:
    stop = timestamps.format_us(BASE + 10 * S)
    sequencer = Sequencer()
    sequencer.add("i", f"{A} AND ({B} START t'{timestamps.format_us(BASE)}' STOP t'{stop}')")
    sequencer.feed([event(*a_at(n * S)) for n in range(20)])
    assert sequencer.kept == 1  # only the a.example at the newest instant may still pair


def test_a_search_that_runs_too_long_is_cut_short_and_counted() -> None:
    sequencer = Sequencer(budget=500)
    sequencer.add("slow", f"({A} REPEATS 40 TIMES) AND {B}")
    sequencer.feed([event(*a_at(n)) for n in range(300)] + [event(*b_at(300))])
    assert sequencer.exhausted == {"slow": 1} and not sequencer.found


def test_late_events_are_counted() -> None:
    sequencer = Sequencer()
    sequencer.add("i", f"{A} AND {B}")
    sequencer.feed([event(*a_at(10 * S))])
    sequencer.feed([event(*b_at(5 * S))])
    assert sequencer.late == 1 and "i" in sequencer.found


# -- what cannot run ------------------------------------------------------------------------
def test_unsupported_patterns_are_reported_with_the_reason() -> None:
    sequencer = Sequencer()
    cases = {
        "broken": "[a:b = ",
        "superset": f"{A} AND [ipv4-addr:value ISSUPERSET '10.0.0.0/8']",
        "never": f"{NEVER} FOLLOWEDBY {A}",
        "empty": f"{A} START t'2026-01-01T00:00:00Z' STOP t'2026-01-01T00:00:00Z'",
        "zero": f"{A} REPEATS 0 TIMES",
        "instant": f"{A} WITHIN 0 SECONDS",
        "huge": f"{A} REPEATS {MAX_EVENTS + 1} TIMES",
        "wide": " OR ".join(f"[domain-name:value = 'h{n}.example']" for n in range(130)),
        "deep": " OR ".join(f"[domain-name:value = 'h{n}.example']" for n in range(1000)),
    }
    for indicator_id, pattern in cases.items():
        assert sequencer.add(indicator_id, pattern) is False, indicator_id
    reasons = sequencer.unsupported
    assert set(reasons) == set(cases)
    assert "not a STIX 2.1 pattern" in reasons["broken"]
    assert "ISSUPERSET" in reasons["superset"]
    assert "can never match" in reasons["never"] and "can never match" in reasons["empty"]
    assert "at least 1" in reasons["zero"] and "positive" in reasons["instant"]
    assert f"more than {MAX_EVENTS} events" in reasons["huge"]
    assert f"more than {MAX_OBSERVATIONS} observations" in reasons["wide"]
    assert "too deeply" in reasons["deep"]
    assert sequencer.add("partly", f"{NEVER} OR {A}")  # one way can still match
    assert sequencer.feed([event(*a_at(0))])[0].indicator_id == "partly"


def test_observations_are_written_back_as_they_were_read() -> None:
    """The text each observation is handed to the engine as parses to the same tree."""
    for text in (A, D, E, "[file:hashes.'SHA-256' = 'ab' OR (file:name = 'it''s' AND "
                 "file:size > 10)]".replace("''", "\\'"),
                 "[process:command_line NOT MATCHES '^cmd\\\\.exe']",
                 "[network-traffic:dst_port IN (80, 443) AND network-traffic:x_f < -1.25]",
                 "[file:name NOT LIKE 'a_%' OR x-thing:flag = true]"):
        tree = parse(text)
        assert isinstance(tree, Observation)
        assert parse(f"[{expression_text(tree.expression)}]") == tree, text

"""MISP's polynomial decaying model, as ``communique.detect.decay`` scores indicators.

MISP publishes the formula, its defaults and its models, but no worked score with
exact inputs (the training deck shows a score of 54.475… without the elapsed time).
The score examples below are therefore computed by hand from the formula
``base × (1 − (t/τ)^(1/δ))`` and written out in each test. The base-score example is
the one in MISP's blog post "Decaying of Indicators" (2019-09-12): two taxonomies
weighted 50/50, with values 100 and 75, give 87.5.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from communique import timestamps
from communique.detect import decay
from communique.detect.decay import Model

DAY = decay.SECONDS_PER_DAY
DAY_US = DAY * 1_000_000
T0 = timestamps.parse("2026-01-01T00:00:00Z")


def indicator(**fields: object) -> dict:
    """A STIX indicator refreshed at T0, with ``fields`` laid over it."""
    stix: dict[str, object] = {
        "type": "indicator", "spec_version": "2.1",
        "id": "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
        "created": "2026-01-01T00:00:00.000Z", "modified": "2026-01-01T00:00:00.000Z",
        "pattern": "[ipv4-addr:value = '198.51.100.7']", "pattern_type": "stix",
        "valid_from": "2026-01-01T00:00:00Z",
    }
    stix.update(fields)
    return stix


# --- MISP's facts ---------------------------------------------------------------------

def test_defaults_are_misps_fine_tuning_tool_defaults() -> None:
    assert Model() == Model(lifetime_days=30, decay_speed=0.3, threshold=30) == decay.DEFAULT


def test_nids_model_is_misps_published_model() -> None:
    assert decay.NIDS == Model(lifetime_days=120, decay_speed=2, threshold=30)
    assert decay.DEFAULT_BASE_SCORE == 80


def test_nids_model_after_30_days_by_hand() -> None:
    # 80 × (1 − (30/120)^(1/2)) = 80 × (1 − 0.5) = 40
    assert decay.score(base_score=80, age_seconds=30 * DAY, model=decay.NIDS) == pytest.approx(40.0)


def test_default_model_after_15_days_by_hand() -> None:
    # 100 × (1 − 0.5^(1/0.3)) = 100 × (1 − 2^(−10/3)) = 100 × (1 − 0.0992125657…)
    got = decay.score(base_score=100, age_seconds=15 * DAY, model=Model())
    assert got == pytest.approx(90.07874342, abs=1e-6)


def test_phishing_model_expires_within_two_days_by_hand() -> None:
    phishing = Model(lifetime_days=3, decay_speed=2.3, threshold=30)
    # 80 × (1 − 0.5^(1/2.3)) = 80 × (1 − 0.7398052…) = 20.8156
    got = decay.score(base_score=80, age_seconds=1.5 * DAY, model=phishing)
    assert got == pytest.approx(20.8156, abs=1e-4)
    assert decay.expired(got, phishing)


def test_threshold_age_is_misps_inverse_by_hand() -> None:
    # τ × (1 − threshold/base)^δ = 120 × (1 − 30/80)² = 120 × 0.390625 = 46.875 days
    age = decay.threshold_age_seconds(base_score=80, model=decay.NIDS)
    assert age == pytest.approx(46.875 * DAY)
    assert decay.score(base_score=80, age_seconds=age, model=decay.NIDS) == pytest.approx(30.0)


def test_half_life_of_the_default_model_by_hand() -> None:
    # a base of 100 halves at τ × 0.5^δ = 30 × 0.5^0.3 = 24.3675… days
    half = decay.threshold_age_seconds(base_score=100, model=Model(threshold=50))
    assert half / DAY == pytest.approx(24.36753, abs=1e-4)


def test_weighted_base_score_reproduces_misps_blog_example() -> None:
    weights = {"admiralty-scale": 50, "phishing": 50}
    both = {"admiralty-scale": 100, "phishing": 75}
    assert decay.weighted_base_score(both, weights=weights) == pytest.approx(87.5)
    # a single tag takes the whole weight: "base_score = 100"
    assert decay.weighted_base_score({"admiralty-scale": 100}, weights=weights) == 100
    # no weighted taxonomy present: the model's default base score
    assert decay.weighted_base_score({"tlp": 0}, weights=weights) == decay.DEFAULT_BASE_SCORE


def test_expired_is_strictly_below_the_threshold() -> None:
    model = Model(threshold=30)
    assert decay.expired(29.999, model)
    assert not decay.expired(30, model)
    assert not decay.expired(0, Model(threshold=0))


# --- the shape of the curve -------------------------------------------------------------

def test_age_zero_gives_the_base_score() -> None:
    for model in (Model(), decay.NIDS, Model(lifetime_days=1, decay_speed=7)):
        assert decay.score(base_score=73, age_seconds=0, model=model) == 73


@pytest.mark.parametrize("age_days", [30, 30.000001, 31, 10_000])
def test_at_and_after_the_lifetime_the_score_is_zero(age_days: float) -> None:
    assert decay.score(base_score=100, age_seconds=age_days * DAY, model=Model()) == 0.0


def test_decay_speed_one_is_linear() -> None:
    linear = Model(lifetime_days=10, decay_speed=1, threshold=0)
    for quarter in range(5):
        got = decay.score(base_score=50, age_seconds=quarter * 2.5 * DAY, model=linear)
        assert got == pytest.approx(50 * (1 - quarter / 4))


def test_fast_decay_above_one_slow_below_one() -> None:
    half = 15 * DAY
    fast = decay.score(base_score=100, age_seconds=half, model=Model(decay_speed=2))
    slow = decay.score(base_score=100, age_seconds=half, model=Model(decay_speed=0.5))
    assert fast == pytest.approx(100 * (1 - math.sqrt(0.5)))  # 29.29: lost most of it early
    assert slow == pytest.approx(75.0)  # 100 × (1 − 0.5²): held on, drops late
    assert fast < 50 < slow


# --- indicators, sightings and STIX fields -------------------------------------------------

def test_current_score_counts_age_from_valid_from() -> None:
    stix = indicator(confidence=80)
    got = decay.current_score(stix, now_us=T0 + 30 * DAY_US, last_sighting_us=None, model=decay.NIDS)
    assert got == pytest.approx(40.0)


def test_a_later_modified_restarts_the_decay() -> None:
    stix = indicator(confidence=80, modified="2026-01-31T00:00:00.000Z")
    got = decay.current_score(stix, now_us=T0 + 60 * DAY_US, last_sighting_us=None, model=decay.NIDS)
    assert got == pytest.approx(40.0)  # 30 days since the update, not 60 since valid_from


def test_a_sighting_resets_the_age() -> None:
    stix = indicator(confidence=80)
    now = T0 + 100 * DAY_US
    unseen = decay.current_score(stix, now_us=now, last_sighting_us=None, model=decay.NIDS)
    seen_now = decay.current_score(stix, now_us=now, last_sighting_us=now, model=decay.NIDS)
    seen_30_days_ago = decay.current_score(stix, now_us=now, last_sighting_us=now - 30 * DAY_US,
                                           model=decay.NIDS)
    assert seen_now == 80
    assert seen_30_days_ago == pytest.approx(40.0)
    assert unseen < seen_30_days_ago


def test_a_sighting_older_than_the_last_update_does_not_age_it() -> None:
    stix = indicator(confidence=80)
    got = decay.current_score(stix, now_us=T0, last_sighting_us=T0 - 50 * DAY_US, model=decay.NIDS)
    assert got == 80


def test_absent_confidence_takes_misps_default_base_score() -> None:
    assert decay.base_score(None) == 80
    assert decay.base_score(None, default=50) == 50
    got = decay.current_score(indicator(), now_us=T0, last_sighting_us=None, model=Model())
    assert got == 80


def test_confidence_is_the_base_score() -> None:
    assert [decay.base_score(c) for c in (0, 15, 100)] == [0.0, 15.0, 100.0]
    got = decay.current_score(indicator(confidence=15), now_us=T0, last_sighting_us=None, model=Model())
    assert got == 15 and decay.expired(got, Model())


def test_explicit_base_overrides_confidence() -> None:
    got = decay.current_score(indicator(confidence=10), now_us=T0, last_sighting_us=None,
                              model=Model(), base=90)
    assert got == 90


def test_before_valid_from_after_valid_until_and_revoked_score_zero() -> None:
    model = Model()
    future = indicator(valid_from="2026-02-01T00:00:00Z", modified="2026-02-01T00:00:00.000Z")
    assert decay.current_score(future, now_us=T0, last_sighting_us=None, model=model) == 0.0
    bounded = indicator(valid_until="2026-01-02T00:00:00Z")
    assert decay.current_score(bounded, now_us=T0 + DAY_US - 1, last_sighting_us=None, model=model) > 0
    assert decay.current_score(bounded, now_us=T0 + DAY_US, last_sighting_us=None, model=model) == 0.0
    revoked = indicator(revoked=True)
    assert decay.current_score(revoked, now_us=T0, last_sighting_us=None, model=model) == 0.0


def test_a_refresh_in_the_future_counts_as_fresh() -> None:
    got = decay.current_score(indicator(), now_us=T0, last_sighting_us=T0 + DAY_US, model=Model())
    assert got == 80


def test_expires_at_matches_the_score_crossing() -> None:
    stix = indicator(confidence=80)
    at = decay.expires_at_us(stix, last_sighting_us=None, model=decay.NIDS)
    assert at == T0 + int(46.875 * DAY_US)
    before = decay.current_score(stix, now_us=at - 1_000_000, last_sighting_us=None, model=decay.NIDS)
    after = decay.current_score(stix, now_us=at + 1_000_000, last_sighting_us=None, model=decay.NIDS)
    assert not decay.expired(before, decay.NIDS) and decay.expired(after, decay.NIDS)
    later = decay.expires_at_us(stix, last_sighting_us=T0 + 10 * DAY_US, model=decay.NIDS)
    assert later == at + 10 * DAY_US


def test_expires_at_honours_valid_until_and_low_base_scores() -> None:
    soon = indicator(confidence=80, valid_until="2026-01-05T00:00:00Z")
    assert decay.expires_at_us(soon, last_sighting_us=None, model=decay.NIDS) == T0 + 4 * DAY_US
    weak = indicator(confidence=20)  # below the threshold of 30 from the start
    assert decay.expires_at_us(weak, last_sighting_us=None, model=decay.NIDS) == T0


def test_model_for_picks_per_type_and_the_shortest_lived() -> None:
    assert decay.model_for(["ipv4-addr"]).lifetime_days < decay.model_for(["file"]).lifetime_days
    assert decay.model_for(["domain-name"]) == decay.NIDS
    assert decay.model_for(["file", "ipv4-addr"]) == decay.PER_TYPE["ipv4-addr"]
    assert decay.model_for(["x-unknown"]) == decay.DEFAULT
    assert decay.model_for([]) == decay.DEFAULT
    custom = {"ipv4-addr": Model(lifetime_days=7)}
    assert decay.model_for(["ipv4-addr"], per_type=custom).lifetime_days == 7


def test_per_type_cannot_be_changed_in_place() -> None:
    with pytest.raises(TypeError):
        decay.PER_TYPE["ipv4-addr"] = Model()  # type: ignore[index]


# --- bad input -------------------------------------------------------------------------

@pytest.mark.parametrize("fields", [
    {"lifetime_days": 0}, {"lifetime_days": -1}, {"lifetime_days": math.inf},
    {"decay_speed": 0}, {"decay_speed": -0.3}, {"decay_speed": math.nan},
    {"threshold": -1}, {"threshold": 101}, {"threshold": True}, {"lifetime_days": "30"},
])
def test_absurd_models_are_rejected(fields: dict) -> None:
    with pytest.raises(ValueError):
        Model(**fields)


@pytest.mark.parametrize("base, age", [
    (-1, 0), (100.5, 0), (math.nan, 0), (80, -1), (80, math.inf), (80, math.nan), (None, 0), (80, "1"),
])
def test_absurd_scores_and_ages_are_rejected(base: object, age: object) -> None:
    with pytest.raises(ValueError):
        decay.score(base_score=base, age_seconds=age, model=Model())  # type: ignore[arg-type]


@pytest.mark.parametrize("confidence", [-1, 101, 50.5, "50", True])
def test_absurd_confidences_are_rejected(confidence: object) -> None:
    with pytest.raises(ValueError):
        decay.base_score(confidence)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        decay.current_score(indicator(confidence=confidence), now_us=T0, last_sighting_us=None,
                            model=Model())


@pytest.mark.parametrize("value", [-0.1, math.nan, math.inf])
def test_absurd_scores_cannot_be_judged(value: float) -> None:
    with pytest.raises(ValueError):
        decay.expired(value, Model())


@pytest.mark.parametrize("stix", [
    "not an object",
    {"type": "indicator"},
    indicator(valid_from="yesterday"),
    indicator(modified=12),
    indicator(valid_until="2026-13-01T00:00:00Z"),
])
def test_malformed_indicators_are_rejected(stix: object) -> None:
    with pytest.raises(ValueError):
        decay.current_score(stix, now_us=T0, last_sighting_us=None, model=Model())  # type: ignore[arg-type]


@pytest.mark.parametrize("now, seen", [(1.5, None), (True, None), (T0, "yesterday"), (T0, 2.0)])
def test_instants_must_be_integer_microseconds(now: object, seen: object) -> None:
    with pytest.raises(ValueError):
        decay.current_score(indicator(), now_us=now, last_sighting_us=seen, model=Model())  # type: ignore[arg-type]


# --- properties ------------------------------------------------------------------------

models = st.builds(
    Model,
    lifetime_days=st.floats(min_value=0.01, max_value=3650),
    decay_speed=st.floats(min_value=0.01, max_value=20),
    threshold=st.floats(min_value=0, max_value=100),
)
bases = st.floats(min_value=0, max_value=100)
ages = st.floats(min_value=0, max_value=20 * 365 * DAY)


@given(models, bases, ages, ages)
def test_score_never_rises_with_age(model: Model, base: float, a: float, b: float) -> None:
    young, old = sorted((a, b))
    assert decay.score(base_score=base, age_seconds=old, model=model) \
        <= decay.score(base_score=base, age_seconds=young, model=model)


@given(models, bases, ages)
def test_score_stays_between_zero_and_the_base(model: Model, base: float, age: float) -> None:
    assert 0 <= decay.score(base_score=base, age_seconds=age, model=model) <= base


@given(models, bases, st.floats(min_value=0, max_value=1))
def test_threshold_age_splits_live_from_expired(model: Model, base: float, fraction: float) -> None:
    age = decay.threshold_age_seconds(base_score=base, model=model)
    assert 0 <= age <= model.lifetime_seconds
    before = decay.score(base_score=base, age_seconds=age * fraction, model=model)
    after = decay.score(base_score=base, age_seconds=age + (model.lifetime_seconds - age) * fraction,
                        model=model)
    assert before >= model.threshold - 1e-9 or age == 0
    assert after <= model.threshold + 1e-9


@given(models, st.integers(min_value=0, max_value=100), st.integers(min_value=0, max_value=10**15),
       st.integers(min_value=0, max_value=10**15))
def test_a_sighting_never_lowers_the_score(model: Model, confidence: int, elapsed: int, since: int) -> None:
    stix = indicator(confidence=confidence)
    now = T0 + elapsed
    plain = decay.current_score(stix, now_us=now, last_sighting_us=None, model=model)
    seen = decay.current_score(stix, now_us=now, last_sighting_us=now - min(since, elapsed), model=model)
    assert seen >= plain

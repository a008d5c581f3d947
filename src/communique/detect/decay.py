"""How much an indicator is still worth: MISP's polynomial decaying model.

An indicator starts at a ``base_score`` (0–100) and loses value with age ``t``::

    score(t) = base_score × (1 − (t / τ) ** (1 / δ))      for 0 ≤ t < τ, else 0

with ``τ`` the lifetime and ``δ`` the decay speed. Once the score falls below the
model's threshold the indicator counts as expired. A sighting starts the decay
again from the base score.

Where each fact comes from (MISP's own code and documentation, restated here):

- The formula, τ given in days, a score never below 0, and a negative elapsed time
  scoring 0: MISP's polynomial model (``app/Model/DecayingModelsFormulas/Polynomial.php``),
  also on the "Scoring Indicators: putting it all together" slide of MISP's training
  deck "MISP and Decaying of Indicators".
- Expired when ``threshold > score`` (strictly): the same model's ``isDecayed``.
- Defaults τ = 30 days, δ = 0.3, threshold = 30: the starting values of MISP's decaying
  model fine-tuning tool (``DecayingModelController::decayingTool``).
- The age at which a score is reached, ``τ × (1 − score / base_score) ** δ``: the inverse
  MISP's tool draws its threshold marker with (``decayingTool.js``, ``getReverseScore``).
- Age counts from the last sighting, or from the last update when that is later:
  MISP's ``DecayingModelBase::computeCurrentScore``; "every time a Sighting is added …
  the score is refreshed back to the base_score" (MISP blog, "Decaying of Indicators",
  2019-09-12).
- ``base_score`` lies in [0, 100]; it is the weighted mean of the numerical values of
  the attribute's taxonomy tags, the weights rescaled over the taxonomies present,
  and ``default_base_score`` when none is present: ``DecayingModelBase::computeBasescore``
  and the blog's worked example (weights 50/50, values 100 and 75 → 87.5).
- MISP's published models (``misp-decaying-models``): "NIDS Simple Decaying Model"
  (network types) τ = 120, δ = 2, threshold = 30, default base score 80; "Phishing
  model" τ = 3, δ = 2.3, threshold = 30, default base score 80.

Communiqué's own choices, not MISP's: STIX ``confidence`` (0–100, STIX 2.1 §3.2) is
taken as the base score unchanged; an indicator without one gets MISP's default base
score of 80; the lifetimes per STIX object type in ``PER_TYPE``; an indicator scores 0
before its ``valid_from``, from its ``valid_until`` on, and once revoked (STIX 2.1
§4.7 and §3.2).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from communique import timestamps

SECONDS_PER_DAY = 86_400
DEFAULT_BASE_SCORE = 80.0  # default_base_score of MISP's published models
MAX_SCORE = 100.0


def _finite(name: str, value: object) -> float:
    """Return ``value`` as a float, or raise ValueError if it is not a finite real number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number, not {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite, not {value!r}")
    return number


@dataclass(frozen=True, slots=True)
class Model:
    """A polynomial decaying model: lifetime τ in days, decay speed δ, expiry threshold."""

    lifetime_days: float = 30.0
    decay_speed: float = 0.3
    threshold: float = 30.0

    def __post_init__(self) -> None:
        if _finite("lifetime_days", self.lifetime_days) <= 0:
            raise ValueError("lifetime_days must be positive")
        if _finite("decay_speed", self.decay_speed) <= 0:
            raise ValueError("decay_speed must be positive")
        if not 0 <= _finite("threshold", self.threshold) <= MAX_SCORE:
            raise ValueError(f"threshold must lie in [0, {MAX_SCORE:g}]")

    @property
    def lifetime_seconds(self) -> float:
        """Return τ in seconds."""
        return self.lifetime_days * SECONDS_PER_DAY


DEFAULT = Model()  # MISP's fine-tuning tool defaults: 30 days, δ 0.3, threshold 30
NIDS = Model(lifetime_days=120, decay_speed=2, threshold=30)  # MISP's NIDS Simple Decaying Model
_FILE = Model(lifetime_days=365, decay_speed=0.3, threshold=30)
_HOST_ARTEFACT = Model(lifetime_days=180, decay_speed=0.3, threshold=30)

# Lifetime by STIX Cyber-observable object type (Communiqué's defaults). Addresses are
# reassigned within weeks, so they keep MISP's 30-day default; domains and URLs follow
# MISP's NIDS model, and so (by analogy) do AS numbers and e-mail addresses; a hash
# names one artefact for good, so file and certificate indicators last a year; host
# artefacts (keys, mutexes, command lines) fall in between. Types not listed use DEFAULT.
PER_TYPE: Mapping[str, Model] = MappingProxyType({
    "ipv4-addr": DEFAULT,
    "ipv6-addr": DEFAULT,
    "network-traffic": DEFAULT,
    "autonomous-system": NIDS,
    "domain-name": NIDS,
    "url": NIDS,
    "email-addr": NIDS,
    "email-message": NIDS,
    "file": _FILE,
    "artifact": _FILE,
    "x509-certificate": _FILE,
    "windows-registry-key": _HOST_ARTEFACT,
    "mutex": _HOST_ARTEFACT,
    "process": _HOST_ARTEFACT,
    "user-account": _HOST_ARTEFACT,
})


def model_for(object_types: Iterable[str], *, per_type: Mapping[str, Model] = PER_TYPE,
              default: Model = DEFAULT) -> Model:
    """Return the model for a pattern over these object types: the shortest-lived one applies."""
    models = [per_type.get(name, default) for name in object_types]
    if not models:
        return default
    return min(models, key=lambda m: (m.lifetime_days, m.decay_speed, m.threshold))


def base_score(confidence: int | None, *, default: float = DEFAULT_BASE_SCORE) -> float:
    """Return the base score (0–100) for a STIX ``confidence``, or ``default`` when it is absent."""
    if confidence is None:
        return _checked_base("default", default)
    if isinstance(confidence, bool) or not isinstance(confidence, int):
        raise ValueError(f"confidence must be an integer, not {type(confidence).__name__}")
    if not 0 <= confidence <= 100:
        raise ValueError(f"confidence must lie in [0, 100], not {confidence}")
    return float(confidence)


def weighted_base_score(values: Mapping[str, float], *, weights: Mapping[str, float],
                        default: float = DEFAULT_BASE_SCORE) -> float:
    """Return MISP's taxonomy-weighted base score: weights rescaled over the values present."""
    present = {name: _finite(f"weight of {name}", weights[name]) for name in values if name in weights}
    if any(weight < 0 for weight in present.values()):
        raise ValueError("weights must not be negative")
    total = sum(present.values())
    if total <= 0:
        return _checked_base("default", default)
    mean = sum(weight * _checked_base(name, values[name]) for name, weight in present.items()) / total
    return min(mean, MAX_SCORE)


def _checked_base(name: str, value: object) -> float:
    """Return a base score as a float, or raise ValueError outside [0, 100]."""
    number = _finite(name, value)
    if not 0 <= number <= MAX_SCORE:
        raise ValueError(f"{name} must lie in [0, {MAX_SCORE:g}], not {value!r}")
    return number


def score(*, base_score: float, age_seconds: float, model: Model) -> float:
    """Return the decayed score of an indicator ``age_seconds`` after its last refresh."""
    base = _checked_base("base_score", base_score)
    age = _finite("age_seconds", age_seconds)
    if age < 0:
        raise ValueError("age_seconds must not be negative")
    lifetime = model.lifetime_seconds
    if age >= lifetime:
        return 0.0
    return max(0.0, base * (1.0 - math.pow(age / lifetime, 1.0 / model.decay_speed)))


def expired(score: float, model: Model) -> bool:
    """Tell whether a score has fallen below the model's threshold (MISP: threshold > score)."""
    value = _finite("score", score)
    if value < 0:
        raise ValueError("score must not be negative")
    return value < model.threshold


def threshold_age_seconds(*, base_score: float, model: Model) -> float:
    """Return the age at which the score reaches the threshold; older than that, it has expired."""
    base = _checked_base("base_score", base_score)
    if base <= model.threshold:
        return 0.0
    return model.lifetime_seconds * math.pow(1.0 - model.threshold / base, model.decay_speed)


@dataclass(frozen=True, slots=True)
class _Lifespan:
    """The instants of an indicator that its score depends on, in microseconds."""

    refreshed_us: int  # the later of valid_from, modified and the last sighting
    valid_from_us: int
    valid_until_us: int | None
    revoked: bool


def _instant(name: str, value: object) -> int:
    """Return ``value`` as microseconds since the epoch, or raise ValueError."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer of microseconds, not {type(value).__name__}")
    return value


def _lifespan(untrusted_indicator: Mapping[str, Any], last_sighting_us: int | None) -> _Lifespan:
    """Read the instants that matter from a STIX indicator, or raise ValueError."""
    if not isinstance(untrusted_indicator, Mapping):
        raise ValueError("an indicator must be a JSON object")
    stamps = {name: timestamps.parse(untrusted_indicator[name])
              for name in ("valid_from", "modified", "created") if name in untrusted_indicator}
    if not stamps:
        raise ValueError("the indicator has none of valid_from, modified and created")
    valid_from = stamps.get("valid_from", stamps.get("created", min(stamps.values())))
    refreshed = max(stamps.get("valid_from", valid_from), stamps.get("modified", valid_from))
    if last_sighting_us is not None:
        refreshed = max(refreshed, _instant("last_sighting_us", last_sighting_us))
    until = untrusted_indicator.get("valid_until")
    return _Lifespan(refreshed_us=refreshed, valid_from_us=valid_from,
                     valid_until_us=None if until is None else timestamps.parse(until),
                     revoked=untrusted_indicator.get("revoked") is True)


def current_score(indicator: Mapping[str, Any], *, now_us: int, last_sighting_us: int | None,
                  model: Model, base: float | None = None) -> float:
    """Return an indicator's score at ``now_us``; ``base`` defaults to its confidence's base score.

    Age counts from the later of ``valid_from``, ``modified`` and the last sighting; a
    refresh stamped after ``now_us`` (clock skew) counts as age 0. The score is 0 before
    ``valid_from``, from ``valid_until`` on, and once the indicator is revoked.
    """
    now = _instant("now_us", now_us)
    span = _lifespan(indicator, last_sighting_us)
    if base is None:
        base = base_score(indicator.get("confidence"))
    if span.revoked or now < span.valid_from_us:
        return 0.0
    if span.valid_until_us is not None and now >= span.valid_until_us:
        return 0.0
    age = max(0, now - span.refreshed_us) / 1_000_000
    return score(base_score=base, age_seconds=age, model=model)


def expires_at_us(indicator: Mapping[str, Any], *, last_sighting_us: int | None, model: Model,
                  base: float | None = None) -> int:
    """Return the instant after which the indicator counts as expired (its ``valid_until`` if sooner).

    Useful as ``valid_until`` in an export. Revocation has no instant and is left to the caller.
    """
    span = _lifespan(indicator, last_sighting_us)
    if base is None:
        base = base_score(indicator.get("confidence"))
    age = threshold_age_seconds(base_score=base, model=model)
    crossing = span.refreshed_us + math.floor(age * 1_000_000)
    if span.valid_until_us is not None:
        return min(crossing, span.valid_until_us)
    return crossing

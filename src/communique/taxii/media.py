"""TAXII 2.1 media types and content negotiation (§1.6.8, §3.1)."""

from __future__ import annotations

TAXII_21 = "application/taxii+json;version=2.1"
STIX_21 = "application/stix+json;version=2.1"


def _parse(media: str) -> tuple[str, dict[str, str], float]:
    """Split one media range into (type/subtype, parameters, q)."""
    parts = [p.strip() for p in media.split(";")]
    params: dict[str, str] = {}
    for part in parts[1:]:
        name, _, value = part.partition("=")
        params[name.strip().lower()] = value.strip().strip('"')
    try:
        q = float(params.pop("q", "1"))
    except ValueError:
        q = 0.0
    return parts[0].lower(), params, q


def _is_taxii21(essence: str, params: dict[str, str]) -> bool:
    # Without a version parameter the latest version we serve is meant (§1.6.8.2).
    return essence == "application/taxii+json" and params.get("version", "2.1") == "2.1"


def accepts_taxii(accept: str | None) -> bool:
    """Return whether an Accept header admits ``application/taxii+json;version=2.1``.

    As RFC 9110 §12.5.1 says: an absent header accepts anything, ``*/*`` and
    ``application/*`` admit our media type, and when several ranges match, the
    most specific one decides (so ``application/taxii+json;q=0, */*`` refuses it).
    """
    if accept is None or not accept.strip():
        return True
    best: tuple[int, float] | None = None
    for media in accept.split(","):
        essence, params, q = _parse(media)
        specificity = _specificity(essence, params)
        if specificity is not None and (best is None or specificity > best[0]):
            best = (specificity, q)
    return best is not None and best[1] > 0


def _specificity(essence: str, params: dict[str, str]) -> int | None:
    """Return how specifically a media range names TAXII 2.1 JSON, or None if it does not."""
    if essence == "*/*":
        return 0
    if essence == "application/*":
        return 1
    if _is_taxii21(essence, params):
        return 3 if "version" in params else 2
    return None


def is_taxii_content(content_type: str | None) -> bool:
    """Return whether a request's Content-Type is TAXII 2.1 JSON."""
    if not content_type:
        return False
    essence, params, _ = _parse(content_type)
    params.pop("charset", None)
    return _is_taxii21(essence, params)

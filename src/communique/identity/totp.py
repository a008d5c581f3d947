"""TOTP second factor (RFC 6238, 30-second steps, 6 digits), and single-use recovery codes."""

from __future__ import annotations

import hashlib
import io
import secrets

import pyotp
import segno

STEP_SECONDS = 30
DRIFT_STEPS = 1  # accept the previous and the next step too: clocks drift
RECOVERY_CODES = 10
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no look-alikes (i/l/1, o/0)


def new_secret() -> str:
    """Return a fresh random base32 TOTP secret (160 bits)."""
    return pyotp.random_base32(32)


def provisioning_uri(secret: str, *, email: str, issuer: str) -> str:
    """Return the otpauth:// URI an authenticator app reads from the QR code."""
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=issuer)


def qr_svg(uri: str) -> str:
    """Return the QR code of ``uri`` as an SVG document (no script, no external reference)."""
    out = io.BytesIO()
    segno.make(uri, error="m").save(out, kind="svg", scale=5, xmldecl=False, svgns=True,
                                    title="Scan with an authenticator app")
    return out.getvalue().decode()


def matching_step(secret: str, untrusted_code: str, *, now_s: float) -> int | None:
    """Return the time step whose code ``untrusted_code`` is, within the drift, or None."""
    code = untrusted_code.strip().replace(" ", "")
    if len(code) != 6 or not code.isascii() or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    current = int(now_s // STEP_SECONDS)
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if secrets.compare_digest(totp.at(step * STEP_SECONDS), code):
            return step
    return None


def new_recovery_codes() -> list[str]:
    """Return fresh single-use recovery codes, shown to the user once (about 60 bits each)."""
    return ["-".join("".join(secrets.choice(_ALPHABET) for _ in range(4)) for _ in range(3))
            for _ in range(RECOVERY_CODES)]


def hash_recovery_code(code: str) -> str:
    """Return the stored digest of a recovery code (random, so a fast hash is enough)."""
    normal = code.strip().lower().replace(" ", "").replace("-", "")
    return hashlib.sha256(normal.encode("utf-8", "surrogatepass")).hexdigest()

"""Passwords: argon2id hashes, and the minimum strength a new password must have."""

from __future__ import annotations

import functools

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from communique.errors import BadRequest

MIN_LENGTH = 12
MAX_LENGTH = 1024  # argon2 takes any length; this only bounds the work one request can ask for
_COMMON = frozenset({
    "password1234", "123456789012", "qwertyuiopas", "letmein12345", "administrator",
    "welcome12345", "passw0rd1234", "iloveyou1234", "changeme1234", "correcthorsebatterystaple",
})


@functools.cache
def _hasher() -> PasswordHasher:
    return PasswordHasher()  # argon2id, with the library's RFC 9106 "low memory" parameters


@functools.cache
def _dummy_hash() -> str:
    return _hasher().hash("an unguessable placeholder, never a password")


def hash_password(password: str) -> str:
    """Return the argon2id hash to store for ``password``."""
    return _hasher().hash(password)


def verify_password(stored_hash: str | None, untrusted_password: str) -> bool:
    """Return whether the password matches; spend the same time when there is no hash."""
    if len(untrusted_password) > MAX_LENGTH:
        return False
    try:
        return _hasher().verify(stored_hash or _dummy_hash(), untrusted_password) and bool(stored_hash)
    except (VerificationError, InvalidHashError):
        return False


def check_strength(password: str, *, email: str) -> None:
    """Raise BadRequest unless ``password`` is long, varied and not about its owner."""
    if len(password) < MIN_LENGTH:
        raise BadRequest(f"a password has at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise BadRequest(f"a password has at most {MAX_LENGTH} characters")
    lowered = password.lower()
    local = email.split("@")[0].lower()
    if lowered in _COMMON or (len(local) >= 4 and local in lowered):
        raise BadRequest("this password is too easy to guess")
    if len(set(password)) < 6:
        raise BadRequest("a password needs at least 6 different characters")

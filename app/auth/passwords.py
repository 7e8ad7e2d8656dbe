"""Password hashing with Argon2id (argon2-cffi).

Production and development use argon2-cffi's defaults (RFC 9106's low-memory profile: t=3,
m=64 MiB, p=4). The test suite alone (``APP_ENV=testing``) uses a cheap profile so that hundreds
of sign-ups stay fast; ``check_needs_rehash`` upgrades such hashes on the next login.
"""

from __future__ import annotations

import secrets
import unicodedata
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app

PROFILES = {
    "rfc9106-low-memory": {},  # argon2-cffi defaults
    "testing": {"time_cost": 1, "memory_cost": 1024, "parallelism": 1},
}


@cache
def _hasher(profile: str) -> PasswordHasher:
    return PasswordHasher(**PROFILES[profile])


@cache
def _dummy_hash(profile: str) -> str:
    return _hasher(profile).hash(secrets.token_urlsafe(16))


def hasher() -> PasswordHasher:
    return _hasher(current_app.config["PASSWORD_HASH_PROFILE"])


def normalise(password: str) -> str:
    """NFC, so a password typed on a keyboard that composes ``é`` and one that sends ``e`` plus
    a combining accent are the same password. The schemas count a new password's length on
    this form too; applying it again (as hashing and verifying do) changes nothing."""
    return unicodedata.normalize("NFC", password)


def hash_password(password: str) -> str:
    return hasher().hash(normalise(password))


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return hasher().verify(password_hash, normalise(password))
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return hasher().check_needs_rehash(password_hash)


def spend_verification_time(password: str) -> None:
    """Verify against a throw-away hash, so an unknown email costs what a wrong password does."""
    verify_password(_dummy_hash(current_app.config["PASSWORD_HASH_PROFILE"]), password)

"""One-time codes: made, hashed and checked here, with no I/O (the bot's nodes use it while they compute)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets

from kommutator.contacts.verified import normal_email, normal_phone

CODE_TTL = dt.timedelta(minutes=10)
MAX_ATTEMPTS = 5  # wrong codes typed for one code; then a new one must be asked for
# Six digits are a million guesses, which a stolen hash would give up in seconds with a plain digest: scrypt with
# a salt of its own per code makes each guess cost tens of milliseconds.
_N, _R, _P = 2**14, 8, 1


def new_code() -> str:
    """Six random digits."""
    return f"{secrets.randbelow(10**6):06d}"


def hash_code(code: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(code.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"scrypt${salt.hex()}${digest.hex()}"


def code_matches(code: str, stored: str) -> bool:
    """Whether ``code`` (spaces and dashes ignored) is the one ``stored`` was made from."""
    typed = "".join(ch for ch in code if ch.isdigit())
    try:
        scheme, salt, digest = stored.split("$")
        if scheme != "scrypt" or len(typed) != 6:
            return False
        got = hashlib.scrypt(typed.encode(), salt=bytes.fromhex(salt), n=_N, r=_R, p=_P, dklen=32)
    except ValueError:
        return False
    return hmac.compare_digest(got.hex(), digest)


def normal_value(kind: str, value: str) -> str | None:
    """The address (lower-case) or the phone in E.164; None when it is not one."""
    return normal_email(value) if kind == "email" else normal_phone(value) if kind == "phone" else None


def mask(kind: str, value: str) -> str:
    """What a timeline or a chat shows of the value: a…@example.com, +7912***6789."""
    if kind == "email":
        local, _, domain = value.partition("@")
        return f"{local[:1]}…@{domain}"
    return f"{value[:5]}***{value[-4:]}" if len(value) > 9 else value

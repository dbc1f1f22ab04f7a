"""Normal forms of the email addresses and phone numbers a channel vouches for, so equal values compare equal."""

from __future__ import annotations

import hashlib
import re

_PHONE_JUNK = re.compile(r"[\s().\-]")


def normal_email(value: str | None) -> str | None:
    """Lower-case and trimmed; None unless it looks like local@domain."""
    if not value:
        return None
    email = value.strip().lower()
    local, at, domain = email.rpartition("@")
    if not at or not local or "." not in domain or len(email) > 254 or any(c.isspace() for c in email):
        return None
    return email


def normal_phone(value: str | None) -> str | None:
    """E.164: ``+`` and 8-15 digits, the first not 0; None for anything else (a national number such as
    8 912 … cannot be told apart from another country's, so it never links)."""
    if not value:
        return None
    phone = _PHONE_JUNK.sub("", value.strip())
    if phone.startswith("00"):
        phone = phone[2:]
    digits = phone.removeprefix("+")
    if not digits.isascii() or not digits.isdigit() or not 8 <= len(digits) <= 15 or digits[0] == "0":
        return None
    return "+" + digits


def lock_key(kind: str, value: str) -> int:
    """A signed 64-bit key for PostgreSQL's advisory locks, one per verified value."""
    digest = hashlib.blake2b(f"kommutator.verified.{kind}:{value}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)

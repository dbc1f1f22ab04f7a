"""Standard Webhooks signatures (https://www.standardwebhooks.com): the receiver checks who sent a body and when.

One implementation for everything the product signs: the API channel's replies, event subscriptions, the CRM
card's requests and alert webhooks.

Headers: ``webhook-id`` (the event's id, the same on every retry: receivers deduplicate by it),
``webhook-timestamp`` (Unix seconds of this attempt) and ``webhook-signature`` (``v1,`` + base64 of
HMAC-SHA256 over ``"{id}.{timestamp}.{body}"`` keyed with the secret's bytes, the part after ``whsec_``
base64-decoded). docs/subscriptions.md shows a receiver's check.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

PREFIX = "whsec_"


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def key_of(secret: str) -> bytes:
    """The HMAC key of a secret: the bytes inside ``whsec_<base64>`` (padding optional, as the reference libraries
    accept), or the text itself for a passphrase."""
    if secret.startswith(PREFIX):
        try:
            return base64.b64decode(secret[len(PREFIX):] + "==", validate=False)
        except (binascii.Error, ValueError):
            return b""
    return secret.encode()


def signature(key: bytes, event_id: str, timestamp: int | str, body: bytes) -> str:
    """The ``webhook-signature`` header value: ``v1,<base64 HMAC-SHA256("{id}.{timestamp}.{body}")>``."""
    digest = hmac.new(key, f"{event_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def sign(secret: str, event_id: str, timestamp: int | str, body: bytes) -> str:
    return signature(key_of(secret), event_id, timestamp, body)


def headers(secret: str, event_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {"webhook-id": event_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(secret, event_id, timestamp, body), "content-type": "application/json"}


def verify(secret: str, event_id: str, timestamp: str, body: bytes, signature_header: str) -> bool:
    """What a receiver does (tests use it as the fake CRM would): any of the space-separated v1 signatures."""
    if not timestamp.isdigit():
        return False
    expected = sign(secret, event_id, int(timestamp), body).split(",", 1)[1]
    return any(hmac.compare_digest(part.split(",", 1)[1], expected)
               for part in signature_header.split() if part.startswith("v1,"))

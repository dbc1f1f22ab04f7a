"""What ``messages.send`` needs: random ids VK drops resends by, inline keyboards, and VK's error codes."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from kommutator.channels.base import Button, SendError

MAX_BUTTONS = 10  # an inline keyboard holds at most 10 buttons in at most 6 rows
_MAX_ROWS = 6
_MAX_LABEL = 40
_MAX_PAYLOAD_BYTES = 255
_INT32_MAX = 2**31 - 1


def random_id(idempotency_key: str, chunk: int) -> int:
    """VK's ``random_id`` for one piece of one of our messages: the same on every attempt, distinct per
    piece, never 0 (0 turns VK's resend check off), within the positive int32 range VK accepts."""
    digest = hashlib.sha256(f"{idempotency_key}:{chunk}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % _INT32_MAX + 1


def _label(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_LABEL else text[: _MAX_LABEL - 1].rstrip() + "…"


def keyboard(buttons: tuple[Button, ...]) -> str:
    """An inline keyboard of text buttons (one per row, two per row past six); a press comes back as the
    label with the payload ``{"button": id}``."""
    per_row = 1 if len(buttons) <= _MAX_ROWS else 2
    rows: list[list[dict[str, Any]]] = []
    for n, b in enumerate(buttons[:MAX_BUTTONS]):
        payload = json.dumps({"button": b.id}, ensure_ascii=False, separators=(",", ":"))
        if len(payload.encode()) > _MAX_PAYLOAD_BYTES:
            raise SendError(retryable=False, reason=f"the button id {b.id[:40]!r}… is too long for VK "
                                                    f"(a payload holds at most {_MAX_PAYLOAD_BYTES} bytes)")
        button = {"action": {"type": "text", "label": _label(b.label), "payload": payload}, "color": "secondary"}
        if n % per_row == 0:
            rows.append([])
        rows[-1].append(button)
    return json.dumps({"inline": True, "buttons": rows}, ensure_ascii=False, separators=(",", ":"))


def overflow_lines(buttons: tuple[Button, ...]) -> str:
    """Buttons beyond what a keyboard holds, as numbered lines the customer answers by number or label."""
    return "\n".join(f"{n}. {b.label}" for n, b in enumerate(buttons[MAX_BUTTONS:], MAX_BUTTONS + 1))


# Error codes VK may clear by itself: wait (seconds) and send again.
_RETRYABLE = {
    1: ("VK reported an unknown error", 5.0),
    6: ("too many requests per second for the community token", 1.0),
    9: ("VK's flood control stopped messages to this customer for now", 60.0),
    10: ("VK had an internal error", 5.0),
    29: ("the community reached a VK rate limit for this method", 600.0),
}
# Error codes that will not change by sending again, with what the agent or administrator can do.
_PERMANENT = {
    5: "the community token is invalid; create a new one in VK (Manage → API usage → Access tokens, with "
       "the 'messages' permission) and save it as the channel's access_token",
    7: "VK denied permission: the community token lacks the 'messages' permission or the community's "
       "messages are turned off",
    15: "VK denied access to this dialog",
    27: "the access_token is not a community token; create one in the community's Manage → API usage",
    900: "the customer has blocked the community",
    901: "the customer has not allowed messages from the community; they have to write to it first or "
         "allow its messages",
    902: "the customer's privacy settings forbid messages from the community",
    911: "VK refused the keyboard format",
    912: "the community's bot features are off: turn on Manage → Messages → Bot settings → Bot abilities",
    914: "the message is too long for VK",
    917: "the community has no access to this dialog",
}

# Permanent errors that concern the channel (its token, its settings at VK), not one message.
_CHANNEL_PROBLEMS = {5: "auth", 7: "auth", 27: "auth", 912: "config"}


def error(answer: dict[str, Any], *, subject: str = "the message") -> SendError:
    """The SendError for VK's ``{"error": {"error_code", "error_msg"}}`` (sent with HTTP 200); ``subject`` names
    what was refused (a file, during its upload)."""
    raw = answer.get("error")
    body = raw if isinstance(raw, dict) else {}
    code = body.get("error_code")
    said = " ".join(str(body.get("error_msg") or "no error message").split())[:300]
    if isinstance(code, int) and code in _RETRYABLE:
        sentence, wait = _RETRYABLE[code]
        return SendError(retryable=True, reason=f"VK error {code}: {sentence} ({said})", retry_after=wait)
    if isinstance(code, int) and code in _PERMANENT:
        return SendError(retryable=False, reason=f"VK error {code}: {_PERMANENT[code]} ({said})",
                         channel_problem=_CHANNEL_PROBLEMS.get(code, ""))
    return SendError(retryable=False, reason=f"VK refused {subject} (error {code}: {said})")


def message_id(answer: dict[str, Any]) -> str | None:
    """The id ``messages.send`` returned: a number, or an object/list of them when sent with peer_ids."""
    value = answer.get("response")
    if isinstance(value, list) and value:
        value = value[0]
    if isinstance(value, dict):
        value = value.get("message_id") or value.get("conversation_message_id")
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None

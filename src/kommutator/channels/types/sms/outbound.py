"""Twilio's answers to ``Messages.json`` turned into outcomes: the message sid, or a SendError."""

from __future__ import annotations

from typing import Any

import httpx

from kommutator.channels.base import SendError
from kommutator.channels.types.api.adapter import retry_after_seconds
from kommutator.common.jsonsafe import loads_json

# Codes Twilio answers with HTTP 400 (or 403/404) that sending again will not change.
_PERMANENT = {
    20003: "Twilio refused the account_sid and auth_token; check the channel's settings and credentials",
    20404: "Twilio does not know this account_sid or sender; check the channel's settings",
    21211: "{to} is not a valid phone number",
    21212: "the channel's from_number is not a valid phone number",
    21408: "sending SMS to this country is not enabled in the Twilio account (Messaging → Geo permissions)",
    21602: "the message is empty",
    21606: "the channel's from_number cannot send SMS: it is not an SMS-capable number of this account",
    21610: "the customer has unsubscribed (replied STOP); they must text START to receive messages again",
    21612: "{to} cannot receive SMS from this sender",
    21614: "{to} is not a mobile number",
    21617: "the message is longer than 1600 characters",
    30007: "the carrier filtered the message (spam or content rules)",
}
# Permanent codes that concern the channel (its account, its sender), not one message.
_CHANNEL_PROBLEMS = {20003: "auth", 20404: "config", 21212: "config", 21606: "config"}
# Codes that mean "slow down" whatever the HTTP status.
_RATE_LIMITED = frozenset({20429, 14107, 30022})


def _error_body(content: bytes) -> dict[str, Any]:
    try:
        data = loads_json(content)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def outcome(response: httpx.Response, to: str) -> str | None:
    """The sid of an accepted message; raise SendError for everything else."""
    status = response.status_code
    body = _error_body(response.content)
    if 200 <= status < 300:
        sid = body.get("sid")
        return sid if isinstance(sid, str) and 0 < len(sid) <= 255 else None
    code = body.get("code")
    said = " ".join(str(body.get("message") or "").split())[:300]
    detail = f" (error {code}: {said})" if code or said else ""
    if status == 429 or code in _RATE_LIMITED:
        wait = retry_after_seconds(response.headers.get("retry-after"))
        raise SendError(retryable=True, reason=f"Twilio is rate limiting this account{detail}",
                        retry_after=wait if wait is not None else 1.0)
    if status >= 500:
        raise SendError(retryable=True, reason=f"Twilio answered HTTP {status}{detail}",
                        retry_after=retry_after_seconds(response.headers.get("retry-after")))
    if isinstance(code, int) and code in _PERMANENT:
        raise SendError(retryable=False, reason=f"SMS not sent: {_PERMANENT[code].format(to=to)}{detail}",
                        channel_problem=_CHANNEL_PROBLEMS.get(code, ""))
    if status == 401:
        raise SendError(retryable=False, reason=f"SMS not sent: {_PERMANENT[20003]}{detail}", channel_problem="auth")
    raise SendError(retryable=False, reason=f"SMS not sent: Twilio answered HTTP {status}{detail}")


def account_check(response: httpx.Response) -> str:
    """The account's name and status from ``GET /Accounts/{sid}.json``; SendError when Twilio refuses."""
    if response.status_code != 200:
        outcome(response, "")  # raises the same SendError a send would get
        raise SendError(retryable=False, reason=f"Twilio answered HTTP {response.status_code}")
    body = _error_body(response.content)
    status = str(body.get("status") or "unknown")
    if status != "active":
        raise SendError(retryable=False, reason=f"the Twilio account is {status}; it must be active to send",
                        channel_problem="auth")
    return f"Twilio accepts the credentials of the account {body.get('friendly_name') or body.get('sid')}"

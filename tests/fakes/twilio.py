"""A fake Twilio: a real HTTP server on 127.0.0.1 with ``Messages.json`` and MMS media, and the sender
of Twilio's signed webhooks (incoming SMS, delivery reports) to the product.

``POST /2010-04-01/Accounts/{sid}/Messages.json`` checks HTTP basic auth (401, code 20003), the
parameters (21604 no To, 21211 invalid To, 21603 no From, 21602 no Body, 21617 over 1600 characters,
21610 unsubscribed recipient) and answers 201 with the message resource, or an error in Twilio's shape
``{"code", "message", "more_info", "status"}``. Tests queue raw answers (429 with Retry-After, 500), read
every call in ``calls`` and every accepted message in ``messages``. Media need basic auth on the API host
and redirect to storage on another host that needs none, as Twilio's do.

The webhook side signs requests with an independent implementation of Twilio's algorithm (URL plus the
sorted parameters, HMAC-SHA1 with the auth token, Base64).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import math
import re
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from .serving import Served

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "f00dfeedc0ffee00deadbeef12345678"
FROM_NUMBER = "+15005550006"
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
_GSM = set("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
           "¿abcdefghijklmnopqrstuvwxyzäöñüà^{}\\[~]|€")


def twilio_signature(auth_token: str, url: str, params: dict[str, str]) -> str:
    """X-Twilio-Signature as Twilio computes it."""
    data = url + "".join(f"{key}{params[key]}" for key in sorted(params))
    return base64.b64encode(hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()).decode()


def segments(body: str) -> int:
    if all(c in _GSM for c in body):
        return 1 if len(body) <= 160 else math.ceil(len(body) / 153)
    units = len(body.encode("utf-16-le")) // 2
    return 1 if units <= 70 else math.ceil(units / 67)


@dataclass
class Answer:
    """A raw answer to the next Messages.json call."""

    status: int
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def too_many_requests(cls, retry_after: int) -> Answer:
        return cls(429, {"code": 20429, "message": "Too Many Requests", "more_info":
                         "https://www.twilio.com/docs/errors/20429", "status": 429},
                   {"Retry-After": str(retry_after)})

    @classmethod
    def server_error(cls) -> Answer:
        return cls(500, {"code": 20500, "message": "Internal Server Error", "more_info":
                         "https://www.twilio.com/docs/errors/20500", "status": 500})


@dataclass
class Call:
    """One Messages.json request: its form, whether basic auth matched, the HTTP status answered."""

    form: dict[str, str]
    authorized: bool
    status: int = 0


@dataclass
class SentMessage:
    sid: str
    to: str
    sender: str
    body: str
    status_callback: str | None


def _error(status: int, code: int, message: str) -> JSONResponse:
    return JSONResponse({"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}",
                         "status": status}, status_code=status)


class FakeTwilio:
    def __init__(self, *, account_sid: str = ACCOUNT_SID, auth_token: str = AUTH_TOKEN) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.url = ""
        self.storage_url = ""
        self.calls: list[Call] = []
        self.messages: list[SentMessage] = []
        self.unsubscribed: set[str] = set()
        self.media_requests: list[tuple[str, bool]] = []  # (path, had an Authorization header)
        self._answers: list[Answer] = []
        self._media: dict[str, tuple[bytes, str]] = {}
        self._inbound_ids = itertools.count(1)
        self._api_http, self._storage_http = Served(), Served()  # the REST API and the media storage it redirects to

    def answer(self, *answers: Answer) -> None:
        self._answers.extend(answers)

    def _authorized(self, request: Request) -> bool:
        expected = "Basic " + base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        return hmac.compare_digest(request.headers.get("authorization", ""), expected)

    # --- REST API -------------------------------------------------------------------------------------

    async def _create_message(self, request: Request) -> Response:
        form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
        call = Call(form, self._authorized(request))
        self.calls.append(call)
        response = self._create(request, form, call.authorized)
        call.status = response.status_code
        return response

    async def _account(self, request: Request) -> Response:
        """GET /Accounts/{sid}.json: the account, as Twilio answers it (401 code 20003 for wrong credentials)."""
        if not self._authorized(request) or request.path_params["sid"] != self.account_sid:
            return _error(401, 20003, "Authenticate")
        return JSONResponse({"sid": self.account_sid, "friendly_name": "Shop account", "status": "active",
                             "type": "Full", "auth_token": "[redacted]"})

    def _create(self, request: Request, form: dict[str, str], authorized: bool) -> Response:
        if not authorized or request.path_params["sid"] != self.account_sid:
            return _error(401, 20003, "Authenticate")
        if self._answers:
            a = self._answers.pop(0)
            return JSONResponse(a.body, status_code=a.status, headers=a.headers)
        to, body = form.get("To", ""), form.get("Body", "")
        sender = form.get("From") or form.get("MessagingServiceSid") or ""
        if not to:
            return _error(400, 21604, "A 'To' phone number is required.")
        if not _E164.match(to):
            return _error(400, 21211, f"Invalid 'To' Phone Number: {to}")
        if not sender:
            return _error(400, 21603, "A 'From' phone number is required.")
        if not body and "MediaUrl" not in form:
            return _error(400, 21602, "Message body is required.")
        if len(body.encode("utf-16-le")) // 2 > 1600:
            return _error(400, 21617, "The concatenated message body exceeds the 1600 character limit.")
        if to in self.unsubscribed:
            return _error(400, 21610, "Attempt to send to unsubscribed recipient")
        sid = "SM" + uuid.uuid4().hex
        self.messages.append(SentMessage(sid, to, sender, body, form.get("StatusCallback")))
        path = f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}"
        return JSONResponse({
            "account_sid": self.account_sid, "api_version": "2010-04-01", "body": body,
            "date_created": "Thu, 01 Mar 2031 09:00:00 +0000", "date_sent": None,
            "date_updated": "Thu, 01 Mar 2031 09:00:00 +0000", "direction": "outbound-api", "error_code": None,
            "error_message": None, "from": form.get("From"), "messaging_service_sid": form.get("MessagingServiceSid"),
            "num_media": "0", "num_segments": str(segments(body)), "price": None, "price_unit": "USD", "sid": sid,
            "status": "queued", "subresource_uris": {"media": f"{path}/Media.json"}, "to": to, "uri": f"{path}.json",
        }, status_code=201)

    # --- MMS media ------------------------------------------------------------------------------------

    def add_media(self, data: bytes, content_type: str) -> str:
        """Store an MMS file; its MediaUrl (needs basic auth, redirects to storage)."""
        media_sid = "ME" + uuid.uuid4().hex
        self._media[media_sid] = (data, content_type)
        return f"{self.url}/2010-04-01/Accounts/{self.account_sid}/Messages/MM{uuid.uuid4().hex}/Media/{media_sid}"

    async def _get_media(self, request: Request) -> Response:
        self.media_requests.append((request.url.path, "authorization" in request.headers))
        if not self._authorized(request):
            return _error(401, 20003, "Authenticate")
        if request.path_params["media"] not in self._media:
            return _error(404, 20404, "The requested resource was not found")
        # Storage is another host (Twilio's CDN): the redirect is absolute.
        return RedirectResponse(f"{self.storage_url}/storage/{request.path_params['media']}", status_code=307)

    async def _storage(self, request: Request) -> Response:
        self.media_requests.append((request.url.path, "authorization" in request.headers))
        data, content_type = self._media[request.path_params["media"]]
        return Response(data, media_type=content_type)

    # --- Webhooks to the product ----------------------------------------------------------------------

    async def post_signed(self, client: httpx.AsyncClient, url: str, params: dict[str, str], *,
                          signed_url: str | None = None, token: str | None = None) -> httpx.Response:
        """POST a form to the product as Twilio does, signed over ``signed_url`` (default: ``url``)."""
        sig = twilio_signature(token or self.auth_token, signed_url or url, params)
        headers = {"content-type": "application/x-www-form-urlencoded", "x-twilio-signature": sig,
                   "i-twilio-idempotency-token": str(uuid.uuid4()), "user-agent": "TwilioProxy/1.1"}
        return await client.post(url, content=urlencode(params), headers=headers)

    def inbound_params(self, *, sender: str, to: str, body: str, media: tuple[tuple[str, str], ...] = (),
                       sid: str | None = None) -> dict[str, str]:
        """The parameters of Twilio's 'a message comes in' webhook."""
        sid = sid or f"{'MM' if media else 'SM'}{next(self._inbound_ids):032x}"
        params = {
            "ToCountry": "US", "ToState": "CA", "SmsMessageSid": sid, "NumMedia": str(len(media)), "ToCity": "",
            "FromZip": "94105", "SmsSid": sid, "FromState": "CA", "SmsStatus": "received", "FromCity": "SAN FRANCISCO",
            "Body": body, "FromCountry": "US", "To": to, "ToZip": "", "NumSegments": str(segments(body) if body else 1),
            "ReferralNumMedia": "0", "MessageSid": sid, "AccountSid": self.account_sid, "From": sender,
            "ApiVersion": "2010-04-01"}
        for n, (url, content_type) in enumerate(media):
            params[f"MediaUrl{n}"] = url
            params[f"MediaContentType{n}"] = content_type
        return params

    async def report(self, client: httpx.AsyncClient, message: SentMessage, status: str,
                     error_code: str | None = None) -> httpx.Response:
        """POST a delivery report for one of the product's messages to its StatusCallback."""
        assert message.status_callback, "the message was sent without a StatusCallback"
        params = {"SmsSid": message.sid, "SmsStatus": status, "MessageStatus": status, "To": message.to,
                  "MessageSid": message.sid, "AccountSid": self.account_sid, "From": message.sender,
                  "ApiVersion": "2010-04-01"}
        if error_code:
            params["ErrorCode"] = error_code
        return await self.post_signed(client, message.status_callback, params)

    # --- Running --------------------------------------------------------------------------------------

    async def start(self) -> None:
        prefix = "/2010-04-01/Accounts/{sid}"
        api = Starlette(routes=[
            Route(prefix + ".json", self._account, methods=["GET"]),
            Route(prefix + "/Messages.json", self._create_message, methods=["POST"]),
            Route(prefix + "/Messages/{message}/Media/{media}", self._get_media),
        ])
        storage = Starlette(routes=[Route("/storage/{media}", self._storage)])
        self.url = await self._api_http.start(api)
        self.storage_url = await self._storage_http.start(storage)

    async def stop(self) -> None:
        await self._api_http.stop()
        await self._storage_http.stop()

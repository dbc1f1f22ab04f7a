"""SMS through Twilio or a Twilio-compatible gateway: signed form posts in, ``Messages.json`` out."""

from __future__ import annotations

import datetime as dt
from typing import Any, Self
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, model_validator

from kommutator.channels.base import (
    Accepted,
    Capabilities,
    ChannelAdapter,
    ChannelConfig,
    Check,
    Draft,
    InboundItem,
    InboundRequest,
    InboundResult,
    OutboundMessage,
    Reach,
    Refusal,
    SendError,
    SendResult,
)
from kommutator.channels.files import download
from kommutator.channels.text import sms_segments, split_text, utf16_length
from kommutator.channels.types.sms.inbound import form_params, parse_form
from kommutator.channels.types.sms.outbound import account_check, outcome
from kommutator.channels.types.sms.signature import matches
from kommutator.errors import ProblemError

MAX_TEXT = 1600  # Twilio's limit for one message (it splits it into segments itself)
_SID = r"^[A-Za-z0-9_-]{2,64}$"
_EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'


class SmsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    api_base_url: HttpUrl = Field(default=HttpUrl("https://api.twilio.com"), description="Twilio REST API address")
    account_sid: str = Field(pattern=_SID, description="The account SID (AC…)")
    from_number: str | None = Field(default=None, pattern=r"^\+[1-9][0-9]{6,14}$",
                                    description="The sending number in E.164 (+15551234567)")
    messaging_service_sid: str | None = Field(default=None, pattern=_SID,
                                              description="A Messaging Service SID (MG…) instead of from_number")
    status_callback: bool = Field(default=True, description="Ask Twilio for delivery reports")
    webhook_url: HttpUrl | None = Field(
        default=None, description="This channel's webhook URL exactly as Twilio calls it (the channel's "
                                  "webhook_url); delivery reports are requested at it, and signatures are "
                                  "checked against it as well as against the URL the server saw")

    @model_validator(mode="after")
    def _one_sender(self) -> Self:
        if not self.from_number and not self.messaging_service_sid:
            raise ValueError("set from_number or messaging_service_sid")
        return self


class SmsCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")
    auth_token: str = Field(min_length=16, max_length=200, description="The account's auth token")


def public_webhook_url(channel: ChannelConfig) -> str:
    """The URL Twilio calls for this channel: the setting, else the server's public one when the core
    hands it to adapters (``ChannelConfig.webhook_url``); empty when neither is known."""
    return str(channel.settings.get("webhook_url") or getattr(channel, "webhook_url", "") or "")


def _base(channel: ChannelConfig) -> str:
    return str(channel.settings.get("api_base_url") or "https://api.twilio.com").rstrip("/")


def _params(request: InboundRequest) -> list[tuple[str, str]]:
    # Twilio signs a POST's form fields; with GET the parameters are in the (signed) URL itself.
    return form_params(request.body) if request.method.upper() == "POST" else []


class SmsChannel(ChannelAdapter):
    type = "sms"
    title = "SMS (Twilio)"
    capabilities = Capabilities(max_text_length=MAX_TEXT, buttons=False, attachments=False, messages_per_second=1)
    Settings = SmsSettings
    outbound_settings = ("api_base_url",)
    Credentials = SmsCredentials
    webhook_media_type = "application/x-www-form-urlencoded"  # Twilio's signed form posts

    def setup_instructions(self, channel: ChannelConfig, webhook_url: str) -> str:
        reports = ""
        if channel.settings.get("status_callback", True) and not channel.settings.get("webhook_url"):
            reports = (f" For delivery reports, save {webhook_url} as this channel's webhook_url setting (the "
                       "address Twilio is given with each message).")
        return (f"In the Twilio console open Phone Numbers → Manage → Active numbers → your number (or your "
                f"Messaging Service → Integration) and under 'A message comes in' choose Webhook, {webhook_url}, "
                "HTTP POST. Copy the Account SID into this channel's account_sid setting and the Auth Token into "
                f"its auth_token credential.{reports}")

    def verify(self, channel: ChannelConfig, request: InboundRequest) -> None:
        given = request.headers.get("x-twilio-signature", "")
        token = str(channel.credentials.get("auth_token", ""))
        params = _params(request)
        urls = [request.url]
        public = public_webhook_url(channel)
        if public:
            query = urlsplit(request.url).query
            urls.append(f"{public}?{query}" if query else public)
        if not given or not token or not matches(token, urls, params, given):
            raise ProblemError(403, "invalid_twilio_signature",
                               "X-Twilio-Signature does not match: check that the channel's auth_token is the "
                               "account's current Auth Token and that Twilio calls exactly the channel's "
                               "webhook_url (set the webhook_url setting if a proxy changes the address).")
        account = dict(params).get("AccountSid")
        if account is not None and account != channel.settings.get("account_sid"):
            raise ProblemError(403, "wrong_twilio_account",
                               f"The request is for account {account[:64]}, not this channel's account_sid.")

    def parse(self, channel: ChannelConfig, request: InboundRequest) -> list[InboundItem]:
        params = _params(request) if request.method.upper() == "POST" else list(request.query.items())
        return parse_form(params)

    def acknowledge(self, channel: ChannelConfig, request: InboundRequest,
                    accepted: list[Accepted]) -> InboundResult:
        return InboundResult(200, _EMPTY_TWIML, "text/xml")

    def first_message(self, channel: ChannelConfig, reach: Reach, draft: Draft, at: dt.datetime) -> str:
        """Any phone number can be texted; the text must fit the gateway's limit."""
        to = reach.chat_id or reach.phone
        if not to:
            raise Refusal("sms_no_phone", "The customer has no phone number; add one to the contact first.",
                          "У клиента нет номера телефона; сначала добавьте его в карточку.")
        encoding, segments, _ = sms_segments(draft.text)
        length = utf16_length(draft.text)
        if length > MAX_TEXT:
            raise Refusal("sms_too_long", f"The SMS is {length} characters long; at most {MAX_TEXT} fit — shorten it.",
                          f"В SMS {length} символов, а помещается не больше {MAX_TEXT} — сократите текст.",
                          encoding=encoding, segments=segments)
        return to

    def measure(self, draft: Draft) -> dict[str, Any]:
        encoding, segments, units = sms_segments(draft.text)
        return {"encoding": encoding, "segments": segments, "units": units}

    async def send(self, channel: ChannelConfig, message: OutboundMessage,
                   client: httpx.AsyncClient) -> SendResult:
        """One Twilio message per 1600 characters; delivery reports are asked for the last one only, whose
        sid becomes the message's provider id. Twilio has no idempotency key: a resend after a crash
        between Twilio's answer and our record sends the SMS again."""
        if message.attachments:
            raise SendError(retryable=False, reason="files cannot be sent by SMS; send a link instead")
        pieces = split_text(message.text, MAX_TEXT, size=utf16_length)
        if not pieces:
            raise SendError(retryable=False, reason="the message is empty")
        s = channel.settings
        sid = str(s.get("account_sid", ""))
        url = f"{_base(channel)}/2010-04-01/Accounts/{sid}/Messages.json"
        form: dict[str, str] = {"To": message.to}
        if s.get("messaging_service_sid"):
            form["MessagingServiceSid"] = str(s["messaging_service_sid"])
        else:
            form["From"] = str(s.get("from_number", ""))
        callback = public_webhook_url(channel) if s.get("status_callback", True) else ""
        last: str | None = None
        for n, piece in enumerate(pieces):
            data = {**form, "Body": piece}
            if callback and n == len(pieces) - 1:
                data["StatusCallback"] = f"{callback}{'&' if '?' in callback else '?'}status=1"
            last = await _post(client, url, data, (sid, str(channel.credentials.get("auth_token", ""))),
                               message.to)
        return SendResult(provider_message_id=last)

    async def check(self, channel: ChannelConfig, client: httpx.AsyncClient) -> list[Check]:
        """Twilio accepts the account_sid and auth_token (GET the account; nothing is sent)."""
        sid = str(channel.settings.get("account_sid", ""))
        token = str(channel.credentials.get("auth_token", ""))
        try:
            try:
                response = await client.get(f"{_base(channel)}/2010-04-01/Accounts/{sid}.json", auth=(sid, token),
                                            follow_redirects=False)
            except httpx.TimeoutException:
                raise SendError(retryable=True, reason="Twilio did not answer in time") from None
            except httpx.HTTPError as exc:
                raise SendError(retryable=True, reason=f"cannot reach Twilio: {str(exc) or type(exc).__name__}") \
                    from None
            return [Check("account", True, account_check(response))]
        except SendError as exc:
            return [Check.failed("account", exc)]

    async def fetch_file(self, channel: ChannelConfig, ref: str, client: httpx.AsyncClient) -> bytes:
        """MMS media: basic auth to the API host only; Twilio redirects to storage that needs none."""
        sid = str(channel.settings.get("account_sid", ""))
        token = str(channel.credentials.get("auth_token", ""))
        return await download(client, ref, what="MMS media", auth=(sid, token),
                              auth_host=urlsplit(_base(channel)).netloc)


async def _post(client: httpx.AsyncClient, url: str, data: dict[str, Any], auth: tuple[str, str],
                to: str) -> str | None:
    try:
        response = await client.post(url, data=data, auth=auth, follow_redirects=False)
    except httpx.TimeoutException:
        raise SendError(retryable=True, reason="Twilio did not answer in time") from None
    except httpx.HTTPError as exc:
        raise SendError(retryable=True, reason=f"cannot reach Twilio: {str(exc) or type(exc).__name__}") from None
    return outcome(response, to)

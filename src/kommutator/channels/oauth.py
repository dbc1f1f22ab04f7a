"""OAuth 2.0 sign-in for channels whose provider allows no passwords (mailboxes at Google and Microsoft 365).

A channel type that can sign in this way puts ``OAuthSettings`` and ``OAuthCredentials`` fields in its
settings and credentials models (the email channel does). Then:

1. An administrator saves the channel with ``auth: oauth2``, the provider, the application's client id and
   (as a credential) its client secret, and presses "Sign in" on the channel screen: ``authorize_url``
   gives the provider's consent page, with PKCE (S256) and a state that is encrypted with the server's key
   and names the channel, the administrator and an expiry.
2. The provider sends the browser back to ``/api/v1/channels/oauth/callback``; ``complete`` checks the state
   against the signed-in administrator, exchanges the code at the token endpoint through the outbound guard
   and stores the refresh and access tokens encrypted with the channel's other credentials.
3. Before the channel's work uses them (a reply sent, a mailbox polled, a connection test), ``fresh`` renews
   the access token when it has less than a minute left, storing what the provider returns (Microsoft
   rotates refresh tokens). A refusal (revoked consent, a changed password) becomes the channel's health
   problem with a sentence saying to sign in again.

The adapter only reads ``credentials["oauth_access_token"]`` and speaks SASL XOAUTH2 (``xoauth2``).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from dataclasses import dataclass, replace
from typing import Any, Literal
from urllib.parse import urlencode, urlsplit

import httpx
from pydantic import BaseModel, Field, model_validator

from kommutator.channels.base import ChannelConfig, OutboundTarget

STATE_SECONDS = 600  # how long the consent page may stay open
RENEW_BEFORE = 60.0  # renew an access token with less than this many seconds left


@dataclass(frozen=True)
class Provider:
    title: str
    authorize_url: str
    token_url: str
    scope: str
    extra: tuple[tuple[str, str], ...] = ()  # more query parameters on the consent page


# Google: https://developers.google.com/gmail/imap/xoauth2-protocol (scope https://mail.google.com/, offline
# access for a refresh token). Microsoft: IMAP and SMTP AUTH with OAuth for Exchange Online (the outlook.office.com
# scopes and offline_access); {tenant} is the directory (or "common").
PROVIDERS: dict[str, Provider] = {
    "google": Provider("Google", "https://accounts.google.com/o/oauth2/v2/auth", "https://oauth2.googleapis.com/token",
                       "https://mail.google.com/", (("access_type", "offline"), ("prompt", "consent"))),
    "microsoft": Provider("Microsoft 365", "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/authorize",
                          "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token",
                          "https://outlook.office.com/IMAP.AccessAsUser.All https://outlook.office.com/SMTP.Send "
                          "offline_access", (("prompt", "select_account"),)),
}


class OAuthError(Exception):
    """Signing in or renewing failed; ``code`` is the channel-health problem kind, the message a sentence."""

    def __init__(self, message: str, code: str = "auth") -> None:
        super().__init__(message)
        self.code = code


def _check_url(value: str | None, name: str) -> str | None:
    if value is None:
        return None
    value = value.strip()
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(f"{name} must be an https:// URL of the provider")
    return value


class OAuthSettings(BaseModel):
    """Settings fields of a channel that can sign in with OAuth 2.0 (mixed into the type's settings model)."""

    auth: Literal["password", "oauth2"] = Field(
        default="password", description="How the channel signs in to the provider: 'password', or 'oauth2' (required "
                                        "by Gmail and Microsoft 365; press Sign in on the channel screen after saving)")
    oauth_provider: Literal["google", "microsoft", "custom"] = Field(
        default="google", description="With auth 'oauth2': 'google', 'microsoft', or 'custom' (give the two URLs)")
    oauth_client_id: str | None = Field(default=None, max_length=500,
                                        description="The OAuth application's client id (from the provider's console)")
    oauth_tenant: str = Field(default="common", min_length=1, max_length=100, pattern=r"^[A-Za-z0-9.-]+$",
                              description="Microsoft: the directory (tenant) id or domain; 'common' for any")
    oauth_authorize_url: str | None = Field(default=None, max_length=500,
                                            description="Custom provider: its authorization endpoint")
    oauth_token_url: str | None = Field(default=None, max_length=500,
                                        description="Custom provider: its token endpoint")
    oauth_scope: str | None = Field(default=None, max_length=1000,
                                    description="Scopes to ask for; default: the provider's for IMAP and SMTP")

    @model_validator(mode="after")
    def _oauth_complete(self) -> OAuthSettings:
        self.oauth_authorize_url = _check_url(self.oauth_authorize_url, "oauth_authorize_url")
        self.oauth_token_url = _check_url(self.oauth_token_url, "oauth_token_url")
        if self.auth == "oauth2":
            if not self.oauth_client_id:
                raise ValueError("oauth_client_id is required when auth is 'oauth2'")
            if self.oauth_provider == "custom" and not (self.oauth_authorize_url and self.oauth_token_url):
                raise ValueError("oauth_authorize_url and oauth_token_url are required for a custom provider")
        return self


class OAuthCredentials(BaseModel):
    """Credential fields of such a channel: the client secret from the administrator, the tokens from sign-in."""

    oauth_client_secret: str | None = Field(default=None, min_length=1, max_length=2000,
                                            description="The OAuth application's client secret")
    oauth_refresh_token: str | None = Field(default=None, min_length=1, max_length=10000,
                                            description="Set by Sign in (or paste one obtained elsewhere)")
    oauth_access_token: str | None = Field(default=None, min_length=1, max_length=10000,
                                           description="Set and renewed by the server")
    oauth_expires_at: float | None = Field(default=None, description="When the access token expires (Unix time)")


@dataclass(frozen=True)
class Endpoints:
    authorize_url: str
    token_url: str
    scope: str
    extra: tuple[tuple[str, str], ...]


def uses_oauth(channel: ChannelConfig) -> bool:
    return channel.settings.get("auth") == "oauth2"


def endpoints(settings: dict[str, Any]) -> Endpoints:
    name = settings.get("oauth_provider") or "google"
    tenant = settings.get("oauth_tenant") or "common"
    preset = PROVIDERS.get(name)
    authorize = settings.get("oauth_authorize_url") or (preset.authorize_url.format(tenant=tenant) if preset else "")
    token = settings.get("oauth_token_url") or (preset.token_url.format(tenant=tenant) if preset else "")
    scope = settings.get("oauth_scope") or (preset.scope if preset else "")
    return Endpoints(authorize, token, scope, preset.extra if preset else ())


def token_target(settings: dict[str, Any]) -> list[OutboundTarget]:
    """The token endpoint, which the server calls (the consent page is opened by the administrator's browser)."""
    if settings.get("auth") != "oauth2":
        return []
    url = urlsplit(endpoints(settings).token_url)
    if not url.hostname:
        return []
    return [OutboundTarget(setting="oauth_token_url", host=url.hostname,
                           port=url.port or (443 if url.scheme == "https" else 80))]


def redirect_uri(public_base_url: str) -> str:
    return f"{public_base_url.rstrip('/')}/api/v1/channels/oauth/callback"


def _challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).decode("ascii").rstrip("=")


def authorize_url(channel: ChannelConfig, *, user_id: int, public_base_url: str, seal: Any) -> str:
    """The provider's consent page for this channel. ``seal`` encrypts the state (``SecretBox.encrypt``)."""
    if not uses_oauth(channel):
        raise OAuthError("the channel does not sign in with OAuth 2.0: set auth to 'oauth2' and save first", "config")
    if not channel.settings.get("oauth_client_id"):
        raise OAuthError("set oauth_client_id (the OAuth application's client id) and save first", "config")
    if not channel.credentials.get("oauth_client_secret"):
        raise OAuthError("set the oauth_client_secret credential (the OAuth application's secret) and save first",
                         "config")
    ends = endpoints(channel.settings)
    verifier = secrets.token_urlsafe(48)
    state = seal({"channel": channel.id, "user": user_id, "verifier": verifier,
                  "expires": time.time() + STATE_SECONDS})
    query = {"response_type": "code", "client_id": channel.settings["oauth_client_id"],
             "redirect_uri": redirect_uri(public_base_url), "scope": ends.scope, "state": state,
             "code_challenge": _challenge(verifier), "code_challenge_method": "S256"}
    address = channel.settings.get("address")
    if address:
        query["login_hint"] = str(address)
    query.update(dict(ends.extra))
    sep = "&" if "?" in ends.authorize_url else "?"
    return ends.authorize_url + sep + urlencode(query)


@dataclass(frozen=True)
class Pending:
    """What an encrypted state says."""

    channel_id: int
    user_id: int
    verifier: str


def open_state(state: str, unseal: Any) -> Pending:
    """The pending sign-in a state names; OAuthError when it is forged, altered or too old."""
    try:
        data = unseal(state)
        pending = Pending(int(data["channel"]), int(data["user"]), str(data["verifier"]))
        expires = float(data["expires"])
    except (ValueError, KeyError, TypeError):
        raise OAuthError("the sign-in link is not valid; start again from the channel screen", "config") from None
    if expires < time.time():
        raise OAuthError("the sign-in took longer than 10 minutes; start again from the channel screen", "config")
    return pending


async def _token_call(channel: ChannelConfig, client: httpx.AsyncClient, form: dict[str, str]) -> dict[str, Any]:
    ends = endpoints(channel.settings)
    form = {**form, "client_id": str(channel.settings.get("oauth_client_id") or ""),
            "client_secret": str(channel.credentials.get("oauth_client_secret") or "")}
    host = urlsplit(ends.token_url).hostname or ends.token_url
    try:
        response = await client.post(ends.token_url, data=form, headers={"accept": "application/json"})
    except httpx.HTTPError as exc:
        raise OAuthError(f"the provider's token endpoint {host} cannot be reached: {exc or type(exc).__name__}",
                         "connect") from None
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    if response.status_code >= 400 or "access_token" not in body:
        error = str(body.get("error") or f"HTTP {response.status_code}")
        detail = str(body.get("error_description") or "").strip()
        text = f"{error}: {detail}" if detail else error
        if error in ("invalid_grant", "unauthorized_client", "invalid_client", "access_denied"):
            raise OAuthError(f"the provider {host} refused the channel's sign-in ({text}); an administrator must "
                             "check the client id and secret and sign in again on the channel screen", "auth")
        code = "provider" if response.status_code >= 500 or response.status_code == 429 else "auth"
        raise OAuthError(f"the provider's token endpoint {host} answered {text}", code)
    return body


def _tokens(body: dict[str, Any], previous_refresh: str | None) -> dict[str, Any]:
    try:
        lifetime = float(body.get("expires_in") or 3600)
    except (TypeError, ValueError):
        lifetime = 3600.0
    refresh = body.get("refresh_token") or previous_refresh
    out: dict[str, Any] = {"oauth_access_token": str(body["access_token"]), "oauth_expires_at": time.time() + lifetime}
    if refresh:
        out["oauth_refresh_token"] = str(refresh)
    return out


async def exchange(channel: ChannelConfig, client: httpx.AsyncClient, *, code: str, verifier: str,
                   public_base_url: str) -> dict[str, Any]:
    """Trade the authorization code for tokens: the credentials to store."""
    body = await _token_call(channel, client, {"grant_type": "authorization_code", "code": code,
                                               "redirect_uri": redirect_uri(public_base_url),
                                               "code_verifier": verifier})
    tokens = _tokens(body, None)
    if "oauth_refresh_token" not in tokens:
        raise OAuthError("the provider gave no refresh token, so the channel could not stay signed in; for Google "
                         "remove the application's access in the account's security settings and sign in again",
                         "auth")
    return tokens


async def renew(channel: ChannelConfig, client: httpx.AsyncClient) -> dict[str, Any]:
    """A new access token from the refresh token: the credentials to store."""
    refresh = channel.credentials.get("oauth_refresh_token")
    if not refresh:
        raise OAuthError("the channel is not signed in: press Sign in on the channel screen", "config")
    body = await _token_call(channel, client, {"grant_type": "refresh_token", "refresh_token": str(refresh)})
    return _tokens(body, str(refresh))


def needs_renewal(channel: ChannelConfig, at: float | None = None) -> bool:
    token = channel.credentials.get("oauth_access_token")
    expires = channel.credentials.get("oauth_expires_at")
    try:
        left = float(expires) - (time.time() if at is None else at) if expires is not None else 0.0
    except (TypeError, ValueError):
        left = 0.0
    return not token or left < RENEW_BEFORE


def with_credentials(channel: ChannelConfig, update: dict[str, Any]) -> ChannelConfig:
    return replace(channel, credentials={**channel.credentials, **update})


def xoauth2(user: str, access_token: str) -> str:
    """The SASL XOAUTH2 initial response (before base64), as Google and Microsoft define it."""
    return f"user={user}\x01auth=Bearer {access_token}\x01\x01"

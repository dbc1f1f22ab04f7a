"""A support mailbox at a provider that allows no passwords (Gmail, Microsoft 365): the administrator signs in
with OAuth 2.0 from the channel screen, mail is polled and replies are sent with SASL XOAUTH2, the access token is
renewed before it runs out (the rotated refresh token kept), and a revoked consent becomes the channel's health
problem with a sentence saying what to do. Also: a mailbox behind a company's private CA is trusted per channel.

Everything speaks the real protocols on loopback: the token endpoint over HTTP (tests/fakes/oauth.py), IMAP with
AUTHENTICATE XOAUTH2 (tests/fakes/imap_server.py), SMTP AUTH XOAUTH2 (aiosmtpd), TLS with generated certificates."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import ipaddress
import json
import ssl
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import select

from kommutator.channels.host import Host
from kommutator.channels.models import Channel
from kommutator.channels.types.email.imap import poll_once
from kommutator.conversations.models import Message
from kommutator.runtime import Runtime
from kommutator.workers.outbox import OutboxWorker

from .conftest import Actor
from .fakes.imap_server import FakeImapServer, ImapState
from .fakes.oauth import CLIENT_ID, CLIENT_SECRET, FakeOAuth
from .test_channel_email import SUPPORT, mail

API = "/api/v1"


@pytest.fixture
def settings(settings):  # type: ignore[no-untyped-def]
    settings.outbound_allow_hosts = ["127.0.0.1"]
    settings.public_base_url = "https://support.shop.example"
    return settings


@pytest.fixture
async def runtime(runtime):  # type: ignore[no-untyped-def]
    yield runtime
    client, runtime.channel_client = runtime.channel_client, None
    if isinstance(client, httpx.AsyncClient):
        await client.aclose()


@pytest.fixture
async def oauth() -> AsyncIterator[FakeOAuth]:
    fake = FakeOAuth()
    await fake.start()
    yield fake
    await fake.stop()


class XOAuthRelay:
    """An SMTP submission server that takes only XOAUTH2 (as smtp.gmail.com does for applications)."""

    def __init__(self, bearer: Callable[[str], bool]) -> None:
        self.bearer = bearer
        self.port = 0
        self.delivered: list[bytes] = []
        self.auths: list[tuple[str, bool]] = []
        self._server: asyncio.AbstractServer | None = None

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        raw = base64.b64decode(args[1]) if len(args) > 1 else await server.challenge_auth("", encode_to_b64=False)
        fields = dict(p.split("=", 1) for p in bytes(raw).decode().split("\x01") if p)  # type: ignore[arg-type]
        user, token = fields.get("user", ""), fields.get("auth", "").removeprefix("Bearer ")
        ok = user == SUPPORT and self.bearer(token)
        self.auths.append((user, ok))
        if not ok:  # RFC 7628: the error as a challenge, the client's empty answer, then 535
            await server.challenge_auth(json.dumps({"status": "400", "schemes": "Bearer"}))
            return AuthResult(success=False, handled=False)
        return AuthResult(success=True)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if not session.authenticated:
            return "530 5.7.0 Authentication Required"
        self.delivered.append(envelope.original_content or b"")
        return "250 2.0.0 OK"

    async def start(self, tls: ssl.SSLContext | None = None) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: SMTP(self, hostname="smtp.provider.example", loop=loop, auth_require_tls=False),
            "127.0.0.1", 0, ssl=tls)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()


@pytest.fixture
async def relay(oauth: FakeOAuth) -> AsyncIterator[XOAuthRelay]:
    fake = XOAuthRelay(lambda token: token in oauth.access_tokens)
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
def mailbox(oauth: FakeOAuth) -> Iterator[tuple[ImapState, FakeImapServer]]:
    state = ImapState(SUPPORT, "no-passwords-here")
    state.bearer = lambda token: token in oauth.access_tokens
    with FakeImapServer(state) as server:
        yield state, server


def oauth_settings(oauth: FakeOAuth, relay: XOAuthRelay, imap_port: int) -> dict[str, Any]:
    return {"address": SUPPORT, "inbound": ["imap"], "imap_host": "127.0.0.1", "imap_port": imap_port,
            "imap_security": "none", "smtp_host": "127.0.0.1", "smtp_port": relay.port, "smtp_security": "none",
            "poll_seconds": 30, "auth": "oauth2", "oauth_provider": "custom", "oauth_client_id": CLIENT_ID,
            "oauth_authorize_url": oauth.authorize_endpoint, "oauth_token_url": oauth.token_endpoint,
            "oauth_scope": "https://mail.google.com/"}


@pytest.fixture
async def channel(client: httpx.AsyncClient, admin: Actor, oauth: FakeOAuth, relay: XOAuthRelay,
                  mailbox: tuple[ImapState, FakeImapServer]) -> dict[str, Any]:
    r = await client.post(f"{API}/channels", headers=admin.headers, json={
        "type": "email", "name": "Gmail support", "settings": oauth_settings(oauth, relay, mailbox[1].port),
        "credentials": {"oauth_client_secret": CLIENT_SECRET}})
    assert r.status_code == 201, r.text
    return dict(r.json())


async def sign_in(client: httpx.AsyncClient, admin: Actor, oauth: FakeOAuth, channel_id: int) -> httpx.Response:
    r = await client.post(f"{API}/channels/{channel_id}/oauth/start", headers=admin.headers)
    assert r.status_code == 200, r.text
    code, query = oauth.consent(r.json()["authorize_url"])
    assert query["redirect_uri"] == r.json()["redirect_uri"] == f"https://support.shop.example{API}/channels/oauth/callback"
    assert query["login_hint"] == SUPPORT
    return await client.get(f"{API}/channels/oauth/callback", headers=admin.headers,
                            params={"state": query["state"], "code": code})


def landing(response: httpx.Response) -> dict[str, str]:
    """Where the callback sends the browser: the channel screen, with the outcome in the query."""
    assert response.status_code == 303, response.text
    target = urlsplit(response.headers["location"])
    assert target.path == "/" and target.fragment == "channels", target
    return {k: v[0] for k, v in parse_qs(target.query).items()}


async def stored_credentials(runtime: Runtime, channel_id: int) -> dict[str, Any]:
    async with runtime.db.read() as s:
        row = await s.get(Channel, channel_id)
    assert row is not None
    assert "ya29." not in row.credentials_encrypted and "1//" not in row.credentials_encrypted  # encrypted at rest
    return runtime.box.decrypt(row.credentials_encrypted)


async def test_sign_in_poll_reply_renew_and_revoke(client: httpx.AsyncClient, admin: Actor, runtime: Runtime,
                                                   oauth: FakeOAuth, relay: XOAuthRelay,
                                                   mailbox: tuple[ImapState, FakeImapServer],
                                                   channel: dict[str, Any]) -> None:
    cid = channel["id"]
    # Before signing in, the connection test says what to do.
    r = await client.post(f"{API}/channels/{cid}/test", headers=admin.headers)
    assert not r.json()["ok"] and "Sign in" in " ".join(c["detail"] for c in r.json()["checks"])

    assert landing(await sign_in(client, admin, oauth, cid)) == {"oauth": "ok", "channel": str(cid)}
    first = await stored_credentials(runtime, cid)
    assert first["oauth_refresh_token"] in oauth.refresh_tokens and first["oauth_access_token"] in oauth.access_tokens
    code_request = oauth.requests[-1]
    assert code_request["grant_type"] == "authorization_code" and len(code_request["code_verifier"]) >= 43
    r = await client.get(f"{API}/channels/{cid}", headers=admin.headers)
    assert {"oauth_refresh_token", "oauth_access_token"} <= set(r.json()["credential_fields"])

    r = await client.post(f"{API}/channels/{cid}/test", headers=admin.headers)
    assert r.json()["ok"], r.json()
    assert [c["name"] for c in r.json()["checks"]] == ["SMTP", "IMAP"]

    # A customer's mail is polled with XOAUTH2, and the agent's reply goes out with it.
    state, _ = mailbox
    state.add(mail(body="Где мой заказ 1042?"))
    host = Host(runtime)
    (config,) = await host.channels("email")
    assert (await poll_once(host, config)).taken == 1
    assert "AUTHENTICATE XOAUTH2" in state.commands and "LOGIN" not in state.commands
    async with runtime.db.read() as s:
        inbound = (await s.execute(select(Message).where(Message.direction == "in"))).scalar_one()
    r = await client.post(f"{API}/conversations/{inbound.conversation_id}/messages", headers=admin.headers,
                          json={"text": "Заказ 1042 уже в пути."})
    assert r.status_code == 201, r.text
    worker = OutboxWorker(runtime, name="oauth-test")
    try:
        assert await worker.run_due() == 1
        assert len(relay.delivered) == 1 and relay.auths[-1] == (SUPPORT, True)

        # The access token runs out: the next send renews it first and keeps the rotated refresh token.
        await client.patch(f"{API}/channels/{cid}", headers=admin.headers,
                           json={"credentials": {"oauth_expires_at": 0}})
        before = len(oauth.requests)
        r = await client.post(f"{API}/conversations/{inbound.conversation_id}/messages", headers=admin.headers,
                              json={"text": "Трек-номер пришлём письмом."})
        await worker.run_due()
        assert len(relay.delivered) == 2 and relay.auths[-1] == (SUPPORT, True)
        assert [q["grant_type"] for q in oauth.requests[before:]] == ["refresh_token"]
        second = await stored_credentials(runtime, cid)
        assert second["oauth_refresh_token"] != first["oauth_refresh_token"]
        assert second["oauth_refresh_token"] in oauth.refresh_tokens
        assert second["oauth_expires_at"] > dt.datetime.now(dt.UTC).timestamp() + 3000

        # The user revokes the access: the reply waits, and the channel says to sign in again.
        oauth.revoke()
        await client.patch(f"{API}/channels/{cid}", headers=admin.headers,
                           json={"credentials": {"oauth_expires_at": 0}})
        r = await client.post(f"{API}/conversations/{inbound.conversation_id}/messages", headers=admin.headers,
                              json={"text": "Ещё одно."})
        await worker.run_due()
        assert len(relay.delivered) == 2
        health = (await client.get(f"{API}/channels/{cid}", headers=admin.headers)).json()["health"]
        assert health["status"] in ("degraded", "failing"), health
        assert "invalid_grant" in health["last_error"] and "sign in again" in health["last_error"]
        (config,) = await host.channels("email")
        with pytest.raises(Exception, match="sign in again"):
            await poll_once(host, config)
    finally:
        await worker.stop()


async def test_sign_in_refusals_say_what_happened(client: httpx.AsyncClient, admin: Actor, runtime: Runtime,
                                                  factory: Any, oauth: FakeOAuth, channel: dict[str, Any]) -> None:
    cid = channel["id"]
    r = await client.post(f"{API}/channels/{cid}/oauth/start", headers=admin.headers)
    code, query = oauth.consent(r.json()["authorize_url"])
    callback = f"{API}/channels/oauth/callback"

    # The user pressed "Cancel" on the consent page.
    out = landing(await client.get(callback, headers=admin.headers,
                                   params={"state": query["state"], "error": "access_denied"}))
    assert out["oauth"] == "error" and "access_denied" in out["reason"] and out["channel"] == str(cid)
    # A state that was altered, or one another administrator started, is refused; nothing is stored.
    tampered = query["state"][:-4] + ("AAAA" if not query["state"].endswith("AAAA") else "BBBB")
    out = landing(await client.get(callback, headers=admin.headers, params={"state": tampered, "code": code}))
    assert out["oauth"] == "error" and "not valid" in out["reason"]
    other = await factory.user("admin", name="Other admin")
    out = landing(await client.get(callback, headers=other.headers, params={"state": query["state"], "code": code}))
    assert out["oauth"] == "error" and "another user" in out["reason"]
    assert "oauth_refresh_token" not in await stored_credentials(runtime, cid)
    # A code the provider does not know (or one used twice).
    out = landing(await client.get(callback, headers=admin.headers, params={"state": query["state"], "code": "x"}))
    assert out["oauth"] == "error" and "invalid_grant" in out["reason"]

    # Agents cannot start a sign-in; a password channel has nothing to sign in to.
    agent = await factory.user("agent", name="Agent")
    r = await client.post(f"{API}/channels/{cid}/oauth/start", headers=agent.headers)
    assert r.status_code == 403
    r = await client.patch(f"{API}/channels/{cid}", headers=admin.headers,
                           json={"settings": {**channel["settings"], "auth": "password"}})
    assert r.status_code == 200, r.text
    r = await client.post(f"{API}/channels/{cid}/oauth/start", headers=admin.headers)
    assert r.status_code == 422 and r.json()["code"] == "oauth_not_configured"
    assert "oauth2" in r.json()["detail"]


async def test_oauth_settings_are_checked(client: httpx.AsyncClient, admin: Actor, oauth: FakeOAuth,
                                          relay: XOAuthRelay) -> None:
    base = oauth_settings(oauth, relay, 993)
    for change, words in [({"oauth_client_id": None}, "oauth_client_id is required"),
                          ({"oauth_token_url": None}, "oauth_token_url are required"),
                          ({"oauth_token_url": "ftp://x"}, "https:// URL")]:
        r = await client.post(f"{API}/channels", headers=admin.headers, json={
            "type": "email", "name": "Bad", "settings": {**base, **change}})
        assert r.status_code == 422, r.text
        assert words in r.text
    # The token endpoint is a server this one calls: the outbound guard checks it when the channel is saved.
    r = await client.post(f"{API}/channels", headers=admin.headers, json={
        "type": "email", "name": "Metadata", "settings": {**base, "oauth_token_url": "http://169.254.169.254/token"}})
    assert r.status_code == 422 and r.json()["code"] == "outbound_target_refused", r.text
    # A known provider needs no URLs: Google's endpoints and scope, with offline access for a refresh token.
    r = await client.post(f"{API}/channels", headers=admin.headers, json={
        "type": "email", "name": "Gmail", "settings": {**{k: v for k, v in base.items()
                                                          if k not in ("oauth_authorize_url", "oauth_token_url",
                                                                       "oauth_scope")},
                                                       "oauth_provider": "google"},
        "credentials": {"oauth_client_secret": CLIENT_SECRET}})
    assert r.status_code == 201, r.text
    r = await client.post(f"{API}/channels/{r.json()['id']}/oauth/start", headers=admin.headers)
    url = urlsplit(r.json()["authorize_url"])
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert (url.netloc, url.path) == ("accounts.google.com", "/o/oauth2/v2/auth")
    assert query["scope"] == "https://mail.google.com/" and query["access_type"] == "offline"
    assert query["prompt"] == "consent" and query["client_id"] == CLIENT_ID


# --- A private CA per channel --------------------------------------------------------------------------------


def _certificates(tmp: Path) -> tuple[str, ssl.SSLContext]:
    """A company CA (PEM) and a server context for 127.0.0.1 whose certificate that CA signed."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Shop Internal CA")])
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(start)
          .not_valid_after(start + dt.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mail.shop.internal")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(start + dt.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    (tmp / "server.pem").write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    (tmp / "server.key").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                       serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(tmp / "server.pem", tmp / "server.key")
    return ca.public_bytes(serialization.Encoding.PEM).decode(), server


async def test_a_mailbox_behind_a_private_ca_is_trusted_for_that_channel_only(
        client: httpx.AsyncClient, admin: Actor, tmp_path: Path) -> None:
    ca_pem, server_tls = _certificates(tmp_path)
    state = ImapState(SUPPORT, "imap-secret")
    relay = XOAuthRelay(lambda token: False)
    await relay.start(tls=server_tls)
    try:
        with FakeImapServer(state, tls=server_tls) as imap:
            settings = {"address": SUPPORT, "inbound": ["imap"], "imap_host": "127.0.0.1", "imap_port": imap.port,
                        "imap_security": "ssl", "smtp_host": "127.0.0.1", "smtp_port": relay.port,
                        "smtp_security": "ssl"}
            r = await client.post(f"{API}/channels", headers=admin.headers, json={
                "type": "email", "name": "Internal", "settings": settings,
                "credentials": {"imap_password": "imap-secret"}})
            assert r.status_code == 201, r.text
            cid = r.json()["id"]
            checks = (await client.post(f"{API}/channels/{cid}/test", headers=admin.headers)).json()["checks"]
            assert [(c["name"], c["ok"]) for c in checks] == [("SMTP", False), ("IMAP", False)]
            assert all("certificate verify failed" in c["detail"] for c in checks), checks

            r = await client.patch(f"{API}/channels/{cid}", headers=admin.headers,
                                   json={"settings": {**settings, "tls_ca_certificate": ca_pem}})
            assert r.status_code == 200, r.text
            checks = (await client.post(f"{API}/channels/{cid}/test", headers=admin.headers)).json()["checks"]
            assert [(c["name"], c["ok"]) for c in checks] == [("SMTP", True), ("IMAP", True)], checks
            assert state.logins == 1

            broken = "-----BEGIN CERTIFICATE-----\nnope"
            r = await client.patch(f"{API}/channels/{cid}", headers=admin.headers,
                                   json={"settings": {**settings, "tls_ca_certificate": broken}})
            assert r.status_code == 422 and "tls_ca_certificate" in r.text
    finally:
        await relay.stop()

"""Logins, sessions and tokens cannot outlive their rights: the login limit holds against parallel guesses and
behind proxies, password changes, resets and deactivation end what they should, cookies follow the public URL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from kommutator.app import create_app
from kommutator.audit.models import AuditEntry
from kommutator.auth import api as auth_api
from kommutator.auth.clientip import client_address, parse_networks
from kommutator.auth.ratelimit import MemoryLimiter
from kommutator.config import Settings
from kommutator.runtime import Runtime

from .conftest import PASSWORD, Actor, Clock, Factory

LOGIN = "/api/v1/auth/login"
ME = "/api/v1/auth/me"


_tabs: list[httpx.AsyncClient] = []


@pytest.fixture(autouse=True)
async def _close_tabs() -> AsyncIterator[None]:
    yield
    while _tabs:
        await _tabs.pop().aclose()


def tab(app: Any, address: str = "127.0.0.1") -> httpx.AsyncClient:
    """A browser tab of its own (own cookie jar), connecting from ``address``; closed after the test."""
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(address, 40123)),
                               base_url="http://testserver")
    _tabs.append(client)
    return client


async def log_in(app: Any, email: str, password: str = PASSWORD) -> tuple[httpx.AsyncClient, dict[str, str]]:
    """A logged-in tab and the CSRF header its writes need."""
    browser = tab(app)
    r = await browser.post(LOGIN, json={"email": email, "password": password})
    assert r.status_code == 200, r.text
    return browser, {"X-CSRF-Token": r.json()["csrf_token"]}


@pytest.fixture
async def build(settings: Settings) -> AsyncIterator[Any]:
    """Start the app with some settings changed (public URL, trusted proxies); yield (runtime, app, factory)."""
    runtimes: list[Runtime] = []

    async def make(**changes: Any) -> tuple[Runtime, Any, Factory]:
        rt = Runtime.build(Settings.model_validate({**settings.model_dump(), **changes}))
        await rt.db.start()
        runtimes.append(rt)
        return rt, create_app(runtime=rt), Factory(rt)

    yield make
    for rt in runtimes:
        await rt.db.close()


# --- the login limit ----------------------------------------------------------------------------------------------


async def test_parallel_guesses_are_counted_before_any_password_is_checked(client, runtime, factory, monkeypatch):
    agent = await factory.user("agent")
    limit = runtime.settings.login_attempts_per_minute
    checked = 0
    real = auth_api.verify_password

    def counting(stored: str | None, password: str) -> bool:
        nonlocal checked
        checked += 1
        return real(stored, password)

    monkeypatch.setattr(auth_api, "verify_password", counting)
    guesses = [f"guess-{i}" for i in range(59)] + [PASSWORD]  # the right one arrives with the crowd, last
    answers = await asyncio.gather(*(client.post(LOGIN, json={"email": agent.email, "password": p})
                                     for p in guesses))
    statuses = [r.status_code for r in answers]
    assert checked <= limit, f"{checked} passwords were checked in parallel; the limit is {limit}"
    assert statuses.count(401) == limit and statuses.count(429) == 60 - limit, statuses
    assert 200 not in statuses, "no guess beyond the limit may be checked, right or wrong"
    refused = next(r for r in answers if r.status_code == 429)
    assert 1 <= int(refused.headers["retry-after"]) <= 60 and refused.json()["code"] == "too_many_login_attempts"


async def test_the_limit_lifts_as_the_minute_passes_and_a_right_password_forgives_the_account(
        app, runtime, factory, clock: Clock):
    agent = await factory.user("agent")
    limit = runtime.settings.login_attempts_per_minute
    home, cafe = tab(app, "192.0.2.1"), tab(app, "192.0.2.2")
    for _ in range(limit - 1):
        assert (await home.post(LOGIN, json={"email": agent.email, "password": "nope"})).status_code == 401
    assert (await home.post(LOGIN, json={"email": agent.email, "password": PASSWORD})).status_code == 200
    for _ in range(limit):  # the success forgot the account's failures
        assert (await cafe.post(LOGIN, json={"email": agent.email, "password": "nope"})).status_code == 401
    r = await cafe.post(LOGIN, json={"email": agent.email, "password": PASSWORD})
    assert r.status_code == 429 and r.headers["retry-after"] == "61"
    clock.tick(30)
    assert (await home.post(LOGIN, json={"email": agent.email, "password": PASSWORD})).status_code == 429, \
        "the account is held from every address"
    clock.tick(31)
    assert (await cafe.post(LOGIN, json={"email": agent.email, "password": PASSWORD})).status_code == 200


async def test_colleagues_behind_one_address_log_in_without_locking_each_other_out(client, runtime, factory):
    limit = runtime.settings.login_attempts_per_minute
    for _ in range(limit + 5):
        agent = await factory.user("agent")
        assert (await client.post(LOGIN, json={"email": agent.email, "password": PASSWORD})).status_code == 200


async def test_the_limiter_forgets_what_the_minute_has_passed(client, runtime, clock: Clock):
    for i in range(12):  # one address, many made-up accounts: stay under the address limit by moving time
        r = await client.post(LOGIN, json={"email": f"ghost{i}@example.com", "password": "x"})
        assert r.status_code == 401, r.text
        clock.tick(7)
    clock.tick(61)
    await client.post(LOGIN, json={"email": "last@example.com", "password": "x"})
    assert len(runtime.login_limiter) <= 2, "records of attempts older than the window are swept out"


async def test_a_flood_of_fresh_keys_cannot_grow_the_limiter_without_bound(clock: Clock):
    limiter = MemoryLimiter(3, max_keys=100)
    for i in range(1000):
        assert await limiter.acquire(f"ip:198.51.{i // 256}.{i % 256}") == 0
    assert len(limiter) == 100, "past max_keys the least recently touched keys are dropped"
    for _ in range(3):
        assert await limiter.acquire("user:a@example.com", "ip:203.0.113.1") == 0
    assert await limiter.acquire("user:a@example.com", "ip:203.0.113.2") == 61, "nothing counted past the limit"
    assert await limiter.acquire("ip:203.0.113.2") == 0, "a refused attempt counted against none of its keys"


# --- the client address behind reverse proxies ---------------------------------------------------------------------


@pytest.mark.parametrize(("peer", "forwarded", "client"), [
    ("10.0.0.2", ["203.0.113.5"], "203.0.113.5"),
    ("10.0.0.2", ["198.51.100.1, 203.0.113.5"], "203.0.113.5"),
    ("10.0.0.2", ["203.0.113.5", "10.0.0.9"], "203.0.113.5"),  # two headers read as one list
    ("10.0.0.2", ["203.0.113.5:4711, [2001:db8::1]:443"], "2001:db8::1"),
    ("10.0.0.2", ["not-an-address, 10.0.0.7"], "10.0.0.7"),  # garbage left of our proxies is not believed
    ("10.0.0.2", [], "10.0.0.2"),
    ("::ffff:10.0.0.2", ["203.0.113.5"], "203.0.113.5"),
    ("192.0.2.1", ["203.0.113.5"], "192.0.2.1"),  # not a trusted proxy: its header is ignored
])
def test_the_client_is_the_right_most_address_no_trusted_proxy_vouches_for(peer, forwarded, client):
    assert client_address(peer, forwarded, parse_networks(("10.0.0.0/24",))) == client




async def test_forwarded_addresses_count_only_from_trusted_proxies(build):
    rt, app, factory = await build(trusted_proxies="127.0.0.1, 10.1.0.0/16")
    limit = rt.settings.login_attempts_per_minute

    async def attempt(browser: httpx.AsyncClient, forwarded: str, n: int) -> int:
        r = await browser.post(LOGIN, json={"email": f"someone{n}@example.com", "password": "x"},
                               headers={"X-Forwarded-For": forwarded})
        return r.status_code

    proxy, stranger = tab(app, "127.0.0.1"), tab(app, "192.0.2.7")
    # Ten failures of one customer behind the proxy lock out that customer, not everyone behind the proxy.
    for n in range(limit):
        assert await attempt(proxy, "203.0.113.5", n) == 401
    assert await attempt(proxy, "203.0.113.5", 100) == 429
    assert await attempt(proxy, "198.51.100.9", 101) == 401, "another client behind the proxy is not held"
    # The right-most address no trusted proxy vouches for counts: a forged left part changes nothing.
    assert await attempt(proxy, "198.51.100.1, 203.0.113.5", 102) == 429
    assert await attempt(proxy, "203.0.113.5, 10.1.2.3", 103) == 429, "a chain of trusted proxies is walked"
    # Anyone else's X-Forwarded-For is ignored: they are counted by their own address, however they forge it.
    for n in range(limit):
        assert await attempt(stranger, f"203.0.113.{100 + n}", 200 + n) == 401
    assert await attempt(stranger, "203.0.113.250", 300) == 429
    agent = await factory.user("agent")
    r = await proxy.post(LOGIN, json={"email": agent.email, "password": PASSWORD},
                         headers={"X-Forwarded-For": "198.51.100.77"})
    assert r.status_code == 200, r.text
    async with rt.db.read() as s:
        ips = set((await s.execute(select(AuditEntry.ip).where(AuditEntry.action == "auth.login"))).scalars())
    assert ips == {"198.51.100.77"}, "the audit log records the client, not the proxy"


async def test_the_web_chat_counts_new_chats_per_client_behind_the_proxy(build):
    _, app, factory = await build(trusted_proxies="127.0.0.1")
    admin = await factory.user("admin")
    proxy = tab(app)
    r = await proxy.post("/api/v1/channels", json={"type": "webchat", "name": "Shop"}, headers=admin.headers)
    assert r.status_code == 201, r.text
    url = f"/widget/{r.json()['id']}/session"
    for _ in range(30):  # one visitor's browser starting chat after chat reaches its limit ...
        assert (await proxy.post(url, json={}, headers={"X-Forwarded-For": "203.0.113.5"})).status_code == 200
    assert (await proxy.post(url, json={}, headers={"X-Forwarded-For": "203.0.113.5"})).status_code == 429
    r = await proxy.post(url, json={}, headers={"X-Forwarded-For": "198.51.100.9"})
    assert r.status_code == 200, "... and the other customers behind the same proxy still get a chat"


async def test_trusted_proxies_must_be_addresses_or_networks(settings):
    from kommutator.config import ConfigError, load_settings

    with pytest.raises(ConfigError, match="trusted_proxies"):
        load_settings(data_dir=settings.data_dir, trusted_proxies="proxy.example.com")
    assert load_settings(data_dir=settings.data_dir, trusted_proxies="10.0.0.1,fd00::/8").trusted_proxies == [
        "10.0.0.1/32", "fd00::/8"]


# --- sessions and tokens end with the rights they stood for -----------------------------------------------------------


async def test_changing_your_own_password_needs_the_current_one_and_ends_your_other_sessions(app, factory):
    agent = await factory.user("agent")
    here, here_csrf = await log_in(app, agent.email)
    there, _ = await log_in(app, agent.email)
    me = f"/api/v1/users/{agent.id}"
    r = await here.patch(me, json={"password": "new-password-1"}, headers=here_csrf)
    assert r.status_code == 422 and r.json()["code"] == "current_password_required"
    r = await here.patch(me, json={"password": "new-password-1", "current_password": "not-it"}, headers=here_csrf)
    assert r.status_code == 403 and r.json()["code"] == "wrong_current_password"
    assert (await there.get(ME)).status_code == 200, "a refused change ends nothing"
    r = await here.patch(me, json={"password": "new-password-1", "current_password": PASSWORD}, headers=here_csrf)
    assert r.status_code == 200, r.text
    assert (await here.get(ME)).status_code == 200, "the session the change was made in stays"
    r = await there.get(ME)
    assert r.status_code == 401 and r.json()["code"] == "session_expired", "every other session ended"
    c = tab(app)
    assert (await c.get(ME, headers=agent.headers)).status_code == 200, "your own API tokens stay yours"
    assert (await c.post(LOGIN, json={"email": agent.email, "password": PASSWORD})).status_code == 401
    assert (await c.post(LOGIN, json={"email": agent.email, "password": "new-password-1"})).status_code == 200


async def test_a_login_whose_password_changes_while_it_is_checked_makes_no_session(client, factory, admin,
                                                                                   monkeypatch):
    agent = await factory.user("agent")
    loop = asyncio.get_running_loop()
    real = auth_api.verify_password

    def check_while_reset(stored: str | None, password: str) -> bool:
        ok = real(stored, password)  # right, for the password as it was when the check began ...
        reset = asyncio.run_coroutine_threadsafe(client.patch(
            f"/api/v1/users/{agent.id}", json={"password": "reset-meanwhile"}, headers=admin.headers), loop)
        assert reset.result(60).status_code == 200  # ... and reset by an administrator before the session is made
        return ok

    monkeypatch.setattr(auth_api, "verify_password", check_while_reset)
    r = await client.post(LOGIN, json={"email": agent.email, "password": PASSWORD})
    assert r.status_code == 401 and "set-cookie" not in r.headers, "the old password opened a session"


async def test_guessing_the_current_password_is_limited_like_logins(client, runtime, factory):
    agent = await factory.user("agent")
    me = f"/api/v1/users/{agent.id}"
    for _ in range(runtime.settings.login_attempts_per_minute):
        r = await client.patch(me, json={"password": "new-password-1", "current_password": "guess"},
                               headers=agent.headers)
        assert r.status_code == 403
    r = await client.patch(me, json={"password": "new-password-1", "current_password": PASSWORD},
                           headers=agent.headers)
    assert r.status_code == 429 and "retry-after" in r.headers


async def test_an_administrators_reset_ends_every_session_and_revokes_the_api_tokens(app, client, factory, admin):
    agent = await factory.user("agent")
    browser, _ = await log_in(app, agent.email)
    r = await client.patch(f"/api/v1/users/{agent.id}", json={"password": "reset-by-admin"}, headers=admin.headers)
    assert r.status_code == 200, r.text
    assert (await browser.get(ME)).status_code == 401
    assert (await client.get(ME, headers=agent.headers)).status_code == 401, "the API token was revoked"
    tokens = (await client.get("/api/v1/api-tokens", headers=admin.headers)).json()
    assert all(t["revoked_at"] for t in tokens if t["user_id"] == agent.id)
    assert (await client.get(ME, headers=admin.headers)).status_code == 200, "the administrator's own stay"
    assert (await client.post(LOGIN, json={"email": agent.email, "password": "reset-by-admin"})).status_code == 200


async def test_reactivating_a_user_revives_none_of_their_old_sessions_or_tokens(app, client, factory, admin):
    agent: Actor = await factory.user("agent")
    browser, _ = await log_in(app, agent.email)
    url = f"/api/v1/users/{agent.id}"
    assert (await client.patch(url, json={"active": False}, headers=admin.headers)).status_code == 200
    assert (await browser.get(ME)).status_code == 401
    assert (await client.patch(url, json={"active": True}, headers=admin.headers)).status_code == 200
    assert (await browser.get(ME)).status_code == 401, "the old session stays ended"
    assert (await client.get(ME, headers=agent.headers)).status_code == 401, "the old token stays revoked"
    fresh, _ = await log_in(app, agent.email)
    assert (await fresh.get(ME)).json()["user"]["id"] == agent.id, "a reactivated user logs in afresh"


# --- cookies and HSTS follow the public URL ------------------------------------------------------------------------


@pytest.mark.parametrize(("public", "override", "secure"), [
    ("https://support.example.com", None, True),
    ("http://127.0.0.1:8000", None, False),
    ("https://support.example.com", False, False),
    ("http://127.0.0.1:8000", True, True),
])
async def test_the_session_cookie_is_secure_and_hsts_sent_when_the_public_url_is_https(
        build, public, override, secure):
    _, app, factory = await build(public_base_url=public, cookie_secure=override)
    agent = await factory.user("agent")
    browser = tab(app)
    r = await browser.post(LOGIN, json={"email": agent.email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    assert ("; secure" in r.headers["set-cookie"].lower()) is secure, r.headers["set-cookie"]
    hsts = (await browser.get("/healthz")).headers.get("strict-transport-security")
    if public.startswith("https"):
        assert hsts == "max-age=31536000", "browsers are told to use HTTPS only"
    else:
        assert hsts is None, "HSTS over plain HTTP would be ignored or lock out a test set-up"

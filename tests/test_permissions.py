"""Who may see and do what: agents, supervisors, administrators; tokens, cookie sessions and CSRF; logins."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from kommutator.agents.models import Skill, Team, User
from kommutator.channels.models import Channel
from kommutator.contacts.models import Contact
from kommutator.conversations.models import ConversationLabel, Message, Transition

from .conftest import PASSWORD, Actor, post_inbound

CONV = "/api/v1/conversations"
PROBLEM = "application/problem+json"


async def count(runtime, model, *where) -> int:  # type: ignore[no-untyped-def]
    async with runtime.db.read() as s:
        return int(await s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def listed(client: httpx.AsyncClient, actor: Actor, **params: Any) -> set[int]:
    r = await client.get(CONV, params=params, headers=actor.headers)
    assert r.status_code == 200, r.text
    return {c["id"] for c in r.json()["items"]}


@pytest.fixture
async def world(client, factory, admin, api_channel) -> dict[str, Any]:
    """Two teams with an agent each, an agent in no team, and conversations for each of them."""
    team_a, team_b = await factory.team("Alpha"), await factory.team("Beta")
    anna = await factory.user("agent", teams=[team_a], name="Anna")
    boris = await factory.user("agent", teams=[team_b], name="Boris")
    carl = await factory.user("agent", name="Carl")
    supervisor = await factory.user("supervisor")
    conv: dict[str, int] = {}
    for key in ("a", "b", "carl", "nobody"):
        r = await post_inbound(client, api_channel, msg_id=f"w-{key}", contact=f"c-{key}")
        conv[key] = r.json()["conversation_id"]
    for key, body in (("a", {"team_id": team_a}), ("b", {"team_id": team_b}), ("carl", {"assignee_id": carl.id})):
        r = await client.post(f"{CONV}/{conv[key]}/assign", json=body, headers=admin.headers)
        assert r.status_code == 200, r.text
    return {"conv": conv, "team_a": team_a, "team_b": team_b, "anna": anna, "boris": boris, "carl": carl,
            "sup": supervisor, "admin": admin}


# --- what agents and supervisors see -----------------------------------------------------------------------------


async def test_agents_see_only_their_teams_and_their_own_conversations(client, world):
    conv = world["conv"]
    expect = {"anna": {conv["a"]}, "boris": {conv["b"]}, "carl": {conv["carl"]}, "sup": set(conv.values()),
              "admin": set(conv.values())}
    for who, visible in expect.items():
        actor = world[who]
        assert await listed(client, actor) == visible, who
        for cid in conv.values():
            r = await client.get(f"{CONV}/{cid}", headers=actor.headers)
            if cid in visible:
                assert r.status_code == 200, (who, cid)
            else:
                assert r.status_code == 404, (who, cid, r.status_code)
                assert r.json()["code"] == "conversation_not_found", "404, never 403: do not reveal it exists"
    # Filtering cannot widen what an agent sees.
    assert await listed(client, world["anna"], team_id=world["team_b"]) == set()
    assert await listed(client, world["anna"], view="unassigned") == {conv["a"]}


async def test_an_invisible_conversation_is_indistinguishable_from_a_missing_one(client, world):
    anna = world["anna"]
    hidden = await client.get(f"{CONV}/{world['conv']['b']}", headers=anna.headers)
    missing = await client.get(f"{CONV}/987654", headers=anna.headers)
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["code"] == missing.json()["code"]
    assert hidden.headers["content-type"] == missing.headers["content-type"] == PROBLEM


async def test_agents_get_404_acting_on_others_conversations(client, runtime, world):
    anna, target = world["anna"], world["conv"]["b"]
    attempts: list[tuple[str, str, dict[str, Any] | None]] = [
        ("GET", "", None),
        ("GET", "/messages", None),
        ("POST", "/messages", {"text": "hi"}),
        ("POST", "/messages", {"text": "psst", "kind": "note"}),
        ("POST", "/assign", {"assignee_id": anna.id}),
        ("POST", "/assign", {"team_id": world["team_a"]}),
        ("POST", "/status", {"status": "resolved"}),
        ("PUT", "/labels", {"labels": ["mine"]}),
        ("PATCH", "", {"priority": "urgent"}),
    ]
    before = (await count(runtime, Message), await count(runtime, Transition), await count(runtime, ConversationLabel))
    for method, path, body in attempts:
        r = await client.request(method, f"{CONV}/{target}{path}", json=body, headers=anna.headers)
        assert r.status_code == 404, (method, path, r.text)
        assert r.json()["code"] == "conversation_not_found", (method, path)
    assert (await count(runtime, Message), await count(runtime, Transition),
            await count(runtime, ConversationLabel)) == before
    after = (await client.get(f"{CONV}/{target}", headers=world["boris"].headers)).json()
    assert (after["status"], after["assignee_id"], after["team_id"], after["priority"], after["labels"]) == (
        "queued", None, world["team_b"], "normal", [])


async def test_supervisors_act_on_any_conversation(client, world):
    sup, cid = world["sup"], world["conv"]["nobody"]
    assert (await client.post(f"{CONV}/{cid}/messages", json={"text": "hi"}, headers=sup.headers)).status_code == 201
    r = await client.post(f"{CONV}/{cid}/assign", json={"assignee_id": world["boris"].id}, headers=sup.headers)
    assert r.status_code == 200 and r.json()["assignee_id"] == world["boris"].id
    assert cid in await listed(client, world["boris"])


async def test_an_agent_who_hands_over_loses_sight_of_the_conversation(client, world):
    carl, cid = world["carl"], world["conv"]["carl"]
    r = await client.post(f"{CONV}/{cid}/assign", json={"team_id": world["team_b"], "note": "for Beta"},
                          headers=carl.headers)
    assert r.status_code == 200, r.text
    assert (await client.get(f"{CONV}/{cid}", headers=carl.headers)).status_code == 404
    assert cid in await listed(client, world["boris"])


async def test_supervisors_set_team_members_and_agents_see_the_new_teams_work(client, world):
    anna, url = world["anna"], f"/api/v1/teams/{world['team_b']}/members"
    r = await client.put(url, json={"user_ids": [anna.id]}, headers=anna.headers)
    assert r.status_code == 403 and r.json()["code"] == "supervisor_required"
    assert world["conv"]["b"] not in await listed(client, anna)
    r = await client.put(url, json={"user_ids": [world["boris"].id, anna.id]}, headers=world["sup"].headers)
    assert r.status_code == 200, r.text
    assert r.json()["member_ids"] == sorted([world["boris"].id, anna.id])
    assert await listed(client, anna) == {world["conv"]["a"], world["conv"]["b"]}, "no re-login needed"
    r = await client.put(url, json={"user_ids": [999999]}, headers=world["sup"].headers)
    assert r.status_code == 422 and r.json()["code"] == "user_not_found"


# --- administration is for administrators ------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["agent", "supervisor"])
async def test_only_administrators_create_users_teams_skills_and_channels(client, runtime, factory, role):
    actor = await factory.user(role)
    users_before = await count(runtime, User)
    attempts = [
        ("POST", "/api/v1/users", {"email": "new@example.com", "name": "New", "password": "long-enough-1"}),
        ("POST", "/api/v1/teams", {"name": "Shadow team"}),
        ("POST", "/api/v1/skills", {"name": "hacking"}),
        ("POST", "/api/v1/channels", {"type": "api", "name": "Sneaky"}),
    ]
    for method, url, body in attempts:
        r = await client.request(method, url, json=body, headers=actor.headers)
        assert r.status_code == 403, (url, r.text)
        assert r.headers["content-type"] == PROBLEM
        assert r.json()["code"] == "admin_required", url
    assert await count(runtime, User) == users_before
    assert await count(runtime, Team) == await count(runtime, Skill) == await count(runtime, Channel) == 0


async def test_agents_cannot_change_teams_skills_or_channels(client, factory, admin, api_channel):
    agent = await factory.user("agent")
    team = await factory.team("Alpha")
    skill = (await client.post("/api/v1/skills", json={"name": "ru"}, headers=admin.headers)).json()
    for method, url, body in (
        ("PATCH", f"/api/v1/teams/{team}", {"name": "Mine"}),
        ("DELETE", f"/api/v1/teams/{team}", None),
        ("DELETE", f"/api/v1/skills/{skill['id']}", None),
        ("PUT", f"/api/v1/users/{agent.id}/skills", {"skills": [{"skill_id": skill["id"], "level": 10}]}),
        ("PATCH", f"/api/v1/channels/{api_channel['id']}", {"enabled": False}),
        ("DELETE", f"/api/v1/channels/{api_channel['id']}", None),
    ):
        r = await client.request(method, url, json=body, headers=agent.headers)
        assert r.status_code == 403 and r.json()["code"] == "admin_required", (method, url, r.text)
    assert (await client.get(f"/api/v1/teams/{team}", headers=agent.headers)).json()["name"] == "Alpha"
    assert (await client.get(f"/api/v1/channels/{api_channel['id']}", headers=agent.headers)).json()["enabled"]


async def test_agents_never_see_channel_secrets_or_setup(client, factory, api_channel):
    agent = await factory.user("agent")
    (channel,) = (await client.get("/api/v1/channels", headers=agent.headers)).json()
    assert channel["settings"] == {} and channel["webhook_url"] == "" and channel["credential_fields"] == []


@pytest.mark.parametrize("role", ["agent", "supervisor"])
async def test_only_administrators_erase_contacts(client, runtime, factory, admin, role):
    actor = await factory.user(role)
    r = await client.post("/api/v1/contacts", json={"name": "Precious"}, headers=admin.headers)
    r = await client.delete(f"/api/v1/contacts/{r.json()['id']}", headers=actor.headers)
    assert r.status_code == 403 and r.json()["code"] == "admin_required"
    assert await count(runtime, Contact) == 1


async def test_agents_change_only_their_own_name_password_locale_and_presence(client, runtime, factory):
    agent, other = await factory.user("agent"), await factory.user("agent")
    me = f"/api/v1/users/{agent.id}"
    r = await client.patch(me, json={"name": "Agent Smith", "locale": "ru", "presence": "online",
                                     "password": "a-brand-new-secret", "current_password": PASSWORD},
                           headers=agent.headers)
    assert r.status_code == 200, r.text
    assert (r.json()["name"], r.json()["locale"], r.json()["presence"]) == ("Agent Smith", "ru", "online")
    for body in ({"role": "admin"}, {"role": "supervisor"}, {"capacity": 50}, {"active": False},
                 {"name": "ok", "capacity": 1}):
        r = await client.patch(me, json=body, headers=agent.headers)
        assert r.status_code == 403 and r.json()["code"] == "admin_required", body
    r = await client.patch(f"/api/v1/users/{other.id}", json={"name": "Hijacked"}, headers=agent.headers)
    assert r.status_code == 403
    async with runtime.db.read() as s:
        mine, theirs = await s.get(User, agent.id), await s.get(User, other.id)
    assert (mine.role, mine.capacity, mine.active, mine.name) == ("agent", 5, True, "Agent Smith")
    assert theirs.name != "Hijacked"
    r = await client.post("/api/v1/auth/login", json={"email": agent.email, "password": "a-brand-new-secret"})
    assert r.status_code == 200, "the new password works"


async def test_administrators_change_roles_and_capacity(client, factory, admin):
    agent = await factory.user("agent")
    r = await client.patch(f"/api/v1/users/{agent.id}", json={"role": "supervisor", "capacity": 8},
                           headers=admin.headers)
    assert r.status_code == 200 and (r.json()["role"], r.json()["capacity"]) == ("supervisor", 8)
    r = await client.get(CONV, headers=agent.headers)
    assert r.status_code == 200, "the promotion applies to the very next request"


# --- authentication ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("headers", "code"), [
    ({}, "not_authenticated"),
    ({"Authorization": "Basic dXNlcjpwYXNz"}, "invalid_authorization"),
    ({"Authorization": "Bearer "}, "invalid_authorization"),
    ({"Authorization": "Bearer kmt_not-a-real-token"}, "invalid_token"),
    ({"Cookie": "kmt_session=forged"}, "session_expired"),
])
async def test_unauthenticated_requests_get_401_problem(client, api_channel, headers, code):
    for method, url in (("GET", CONV), ("GET", "/api/v1/contacts"), ("POST", "/api/v1/contacts"),
                        ("GET", "/api/v1/auth/me")):
        r = await client.request(method, url, json={} if method == "POST" else None, headers=headers)
        assert r.status_code == 401, (url, r.text)
        assert r.headers["content-type"] == PROBLEM
        assert r.json()["code"] == code
        assert r.json()["detail"], "the error says what to do"


async def test_a_revoked_api_token_is_refused(client, runtime, factory):
    agent, other = await factory.user("agent"), await factory.user("agent")
    r = await client.post("/api/v1/api-tokens", json={"name": "ci"}, headers=agent.headers)
    assert r.status_code == 201, r.text
    extra = r.json()
    bearer = {"Authorization": f"Bearer {extra['token']}"}
    assert (await client.get("/api/v1/auth/me", headers=bearer)).json()["user"]["id"] == agent.id
    r = await client.delete(f"/api/v1/api-tokens/{extra['id']}", headers=other.headers)
    assert r.status_code == 404, "someone else's token is not yours to revoke"
    r = await client.delete(f"/api/v1/api-tokens/{extra['id']}", headers=agent.headers)
    assert r.status_code == 204 and r.content == b"", "a delete answers 204 with no body, like the others"
    tokens = (await client.get("/api/v1/api-tokens", headers=agent.headers)).json()
    assert [t["revoked_at"] is not None for t in tokens if t["id"] == extra["id"]] == [True]
    r = await client.get("/api/v1/auth/me", headers=bearer)
    assert r.status_code == 401 and r.json()["code"] == "invalid_token"
    assert r.headers["www-authenticate"] == "Bearer"
    assert (await client.get("/api/v1/auth/me", headers=agent.headers)).status_code == 200, "other tokens still work"
    listed = (await client.get("/api/v1/api-tokens", headers=agent.headers)).json()
    assert extra["token"] not in str(listed), "a token is shown only once"


@pytest.fixture
async def browser(app) -> AsyncIterator[httpx.AsyncClient]:
    """A separate client with its own cookie jar, like a browser tab."""
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40001))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


async def test_cookie_session_reads_freely_but_writes_only_with_the_csrf_token(browser, runtime, factory, world):
    anna, cid = world["anna"], world["conv"]["a"]
    r = await browser.post("/api/v1/auth/login", json={"email": anna.email.upper(), "password": PASSWORD})
    assert r.status_code == 200, r.text
    csrf = r.json()["csrf_token"]
    assert csrf and r.json()["user"]["id"] == anna.id
    cookie = r.headers["set-cookie"].lower()
    assert "kmt_session=" in cookie and "httponly" in cookie and "samesite=lax" in cookie
    assert (await browser.get(CONV)).status_code == 200
    me = (await browser.get("/api/v1/auth/me")).json()
    assert me["user"]["id"] == anna.id and me["csrf_token"] == csrf

    messages = await count(runtime, Message)
    for headers in ({}, {"X-CSRF-Token": "wrong"}):
        r = await browser.post(f"{CONV}/{cid}/messages", json={"text": "hi"}, headers=headers)
        assert r.status_code == 403 and r.json()["code"] == "csrf_failed", headers
        r = await browser.patch(f"/api/v1/users/{anna.id}", json={"name": "Changed"}, headers=headers)
        assert r.status_code == 403 and r.json()["code"] == "csrf_failed", headers
    assert await count(runtime, Message) == messages
    csrf_h = {"X-CSRF-Token": csrf}
    assert (await browser.post(f"{CONV}/{cid}/messages", json={"text": "hi"}, headers=csrf_h)).status_code == 201
    r = await browser.patch(f"/api/v1/users/{anna.id}", json={"name": "Changed"}, headers=csrf_h)
    assert r.status_code == 200 and r.json()["name"] == "Changed"
    # A cookie session has the user's permissions, no more.
    assert (await browser.get(f"{CONV}/{world['conv']['b']}")).status_code == 404

    assert (await browser.post("/api/v1/auth/logout", headers=csrf_h)).status_code == 204
    r = await browser.get(CONV)
    assert r.status_code == 401


async def test_passwords_are_stored_as_argon2id(client, runtime, admin):
    r = await client.post("/api/v1/users", json={"email": "New.Agent@Example.com", "name": "New",
                                                  "password": "first-password-1"}, headers=admin.headers)
    assert r.status_code == 201, r.text
    assert not {"password", "password_hash"} & set(r.json())
    uid = r.json()["id"]

    async def stored() -> str:
        async with runtime.db.read() as s:
            return str(await s.scalar(select(User.password_hash).where(User.id == uid)))

    first = await stored()
    assert first.startswith("$argon2id$") and "first-password-1" not in first
    r = await client.patch(f"/api/v1/users/{uid}", json={"password": "second-password-2"}, headers=admin.headers)
    assert r.status_code == 200
    second = await stored()
    assert second.startswith("$argon2id$") and second != first
    login = "/api/v1/auth/login"
    assert (await client.post(login, json={"email": "new.agent@example.com", "password": "first-password-1"})
            ).status_code == 401
    assert (await client.post(login, json={"email": "new.agent@example.com", "password": "second-password-2"})
            ).status_code == 200


async def test_a_wrong_password_does_not_reveal_whether_the_email_exists(client, factory):
    agent = await factory.user("agent")
    wrong = await client.post("/api/v1/auth/login", json={"email": agent.email, "password": "not-the-password"})
    unknown = await client.post("/api/v1/auth/login", json={"email": "ghost@example.com", "password": PASSWORD})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["code"] == unknown.json()["code"] == "invalid_credentials"
    assert wrong.json() == unknown.json()
    assert "set-cookie" not in wrong.headers


async def test_a_deactivated_user_cannot_log_in_or_use_tokens(client, factory, admin):
    agent = await factory.user("agent")
    await client.patch(f"/api/v1/users/{agent.id}", json={"active": False}, headers=admin.headers)
    r = await client.post("/api/v1/auth/login", json={"email": agent.email, "password": PASSWORD})
    assert r.status_code == 401 and r.json()["code"] == "invalid_credentials"
    assert (await client.get(CONV, headers=agent.headers)).status_code == 401


async def test_login_is_rate_limited(client, runtime, factory):
    agent = await factory.user("agent")
    limit = runtime.settings.login_attempts_per_minute
    assert limit == 10
    for _ in range(limit):
        r = await client.post("/api/v1/auth/login", json={"email": agent.email, "password": "guess"})
        assert r.status_code == 401
    r = await client.post("/api/v1/auth/login", json={"email": agent.email, "password": PASSWORD})
    assert r.status_code == 429, "even the right password waits once the limit is reached"
    assert r.headers["content-type"] == PROBLEM and r.json()["code"] == "too_many_login_attempts"
    assert 1 <= int(r.headers["retry-after"]) <= 60
    assert r.headers["retry-after"] in r.json()["detail"]
    # The same address trying another account is also held back.
    r = await client.post("/api/v1/auth/login", json={"email": "other@example.com", "password": "guess"})
    assert r.status_code == 429
    # API tokens are unaffected.
    assert (await client.get("/api/v1/auth/me", headers=agent.headers)).status_code == 200


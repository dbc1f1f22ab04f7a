"""Bad input gets a clear problem+json 4xx, never a 500, and leaves nothing half-written."""

from __future__ import annotations

from sqlalchemy import func, select

from kommutator.agents.models import User


def assert_problem(r, status: int, code: str) -> dict:  # type: ignore[no-untyped-def]
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json", r.headers
    body = r.json()
    assert body["code"] == code, body
    assert body["status"] == status and body["detail"], body
    return body


async def test_malformed_json_is_400(client, admin):
    r = await client.post("/api/v1/contacts", content=b'{"name": ', headers={**admin.headers,
                                                                           "content-type": "application/json"})
    assert_problem(r, 400, "invalid_json")


async def test_wrong_types_are_422_naming_the_field(client, admin):
    r = await client.post("/api/v1/users", json={"email": "a@example.com", "name": "A", "password": 12345678},
                          headers=admin.headers)
    body = assert_problem(r, 422, "validation_failed")
    assert body["errors"][0]["field"] == "password"


async def test_unknown_fields_are_refused(client, admin):
    r = await client.post("/api/v1/teams", json={"name": "T", "colour": "red"}, headers=admin.headers)
    body = assert_problem(r, 422, "validation_failed")
    assert "colour" in body["detail"]


async def test_unknown_ids_are_404_with_a_code(client, admin):
    assert_problem(await client.get("/api/v1/conversations/424242", headers=admin.headers), 404,
                   "conversation_not_found")
    assert_problem(await client.get("/api/v1/contacts/424242", headers=admin.headers), 404, "contact_not_found")
    assert_problem(await client.get("/api/v1/users/424242", headers=admin.headers), 404, "user_not_found")


async def test_out_of_range_ids_are_422_not_500(client, admin):
    assert_problem(await client.get(f"/api/v1/users/{2**70}", headers=admin.headers), 422, "validation_failed")
    assert_problem(await client.get("/api/v1/users/0", headers=admin.headers), 422, "validation_failed")


async def test_oversize_body_is_413(client, admin, runtime):
    big = "x" * 70_000  # the test settings allow 64 kB
    r = await client.post("/api/v1/teams", json={"name": "T", "description": big}, headers=admin.headers)
    assert_problem(r, 413, "body_too_large")

    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(10):
            yield b"y" * 10_000

    r = await client.post("/api/v1/teams", content=chunks(), headers={**admin.headers,
                                                                       "content-type": "application/json"})
    assert_problem(r, 413, "body_too_large")


async def test_unknown_endpoint_and_method(client, admin):
    assert_problem(await client.get("/api/v1/nothing-here", headers=admin.headers), 404, "not_found")
    assert_problem(await client.put("/api/v1/contacts", headers=admin.headers), 405, "method_not_allowed")


async def test_bad_cursor_is_400(client, admin):
    assert_problem(await client.get("/api/v1/conversations?cursor=garbage", headers=admin.headers), 400,
                   "invalid_cursor")


async def test_a_failed_request_writes_nothing(client, admin, runtime):
    """A conflict discovered half-way through an action rolls back everything it did."""
    r = await client.post("/api/v1/teams", json={"name": "Support"}, headers=admin.headers)
    team_id = r.json()["id"]
    before = await _users(runtime)
    # Members list with one unknown id: nothing about the team may change.
    r = await client.put(f"/api/v1/teams/{team_id}/members", json={"user_ids": [admin.id, 999999]},
                         headers=admin.headers)
    assert_problem(r, 422, "user_not_found")
    team = (await client.get(f"/api/v1/teams/{team_id}", headers=admin.headers)).json()
    assert team["member_ids"] == []
    assert await _users(runtime) == before


async def _users(runtime) -> int:  # type: ignore[no-untyped-def]
    async with runtime.db.read() as s:
        return int(await s.scalar(select(func.count()).select_from(User)) or 0)


async def test_security_headers_on_every_response(client):
    r = await client.get("/healthz")
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff"


async def test_audit_log_lists_administrative_actions_for_admins_only(client, admin, factory):
    await client.post("/api/v1/teams", json={"name": "Audited"}, headers=admin.headers)
    r = await client.get("/api/v1/audit-log", params={"action": "team.created"}, headers=admin.headers)
    assert r.status_code == 200
    (entry,) = r.json()["items"]
    assert entry["actor_user_id"] == admin.id and entry["detail"] == {"name": "Audited"}
    agent = await factory.user("agent")
    assert (await client.get("/api/v1/audit-log", headers=agent.headers)).status_code == 403

"""Hostile input gets a clear 4xx, never a 500: made-up cursors, documents nested thousands of levels deep,
NaN and Infinity, booleans for numbers, methods a path does not have, oversized bodies of any content type."""

from __future__ import annotations

import ast
import base64
import json
import re
from pathlib import Path

import pytest

from .conftest import post_inbound
from .test_errors import assert_problem

SRC = Path(__file__).resolve().parents[1] / "src" / "kommutator"


def cursor_of(values: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


@pytest.mark.parametrize("path", ["/api/v1/users", "/api/v1/contacts", "/api/v1/audit-log",
                                  "/api/v1/knowledge/articles", "/api/v1/conversations"])
async def test_made_up_cursors_are_400_on_every_list(client, admin, path):
    arity = 2 if path.endswith("conversations") else 1
    made_up = ["WyJhIl0", cursor_of(["a"] * arity), cursor_of([True] * arity), cursor_of([1.5] * arity),
               cursor_of([-3] * arity), cursor_of([2**70] * arity), cursor_of({"a": 1}), cursor_of([None] * arity),
               cursor_of(["2024-01-01T00:00:00", "7"]), cursor_of([[[[1]]]] * arity), "%%%", "x" * 200]
    for cursor in made_up:
        r = await client.get(path, params={"cursor": cursor}, headers=admin.headers)
        assert_problem(r, 400, "invalid_cursor")


async def test_cursors_the_api_returned_still_page(client, admin, factory):
    for _ in range(3):
        await factory.user("agent")
    first = (await client.get("/api/v1/users", params={"limit": 2}, headers=admin.headers)).json()
    rest = (await client.get("/api/v1/users", params={"limit": 2, "cursor": first["next_cursor"]},
                             headers=admin.headers)).json()
    ids = [u["id"] for u in first["items"] + rest["items"]]
    assert len(ids) == 4 and ids == sorted(set(ids))


def deep(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


@pytest.mark.parametrize("levels", [40, 30_000])
async def test_deep_json_bodies_are_400_too_deep(client, admin, api_channel, levels):
    h = {**admin.headers, "content-type": "application/json"}
    r = await client.post("/api/v1/contacts", content=b'{"name": "x", "attributes": {"a": ' + deep(levels) + b"}}",
                          headers=h)
    assert_problem(r, 400, "too_deep")
    r = await client.post("/api/v1/bot/flows", content=b'{"name": "x", "definition": ' + deep(levels) + b"}",
                          headers=h)
    assert_problem(r, 400, "too_deep")
    token = api_channel["generated_credentials"]["inbound_token"]
    r = await client.post(f"/webhooks/{api_channel['id']}", content=deep(levels),
                          headers={"Authorization": f"Bearer {token}", "content-type": "application/json"})
    assert_problem(r, 400, "too_deep")
    # The same as text inside a field: a flow's source.
    r = await client.post("/api/v1/bot/flows", json={"name": "x", "source": '{"a": ' + deep(levels).decode() + "}"},
                          headers=admin.headers)
    assert_problem(r, 400, "too_deep")


@pytest.mark.parametrize("levels", [40, 30_000])
async def test_deep_yaml_flows_are_400_too_deep(client, admin, levels):
    yaml_h = {**admin.headers, "content-type": "application/yaml"}
    r = await client.post("/api/v1/bot/flows", content=b"name: x\ndefinition: " + deep(levels), headers=yaml_h)
    assert_problem(r, 400, "too_deep")
    r = await client.post("/api/v1/bot/flows", json={"name": "x", "source": "a: " + deep(levels).decode()},
                          headers=admin.headers)
    assert_problem(r, 400, "too_deep")


async def test_a_yaml_alias_bomb_is_refused(client, admin):
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8))
    r = await client.post("/api/v1/bot/flows", content=("name: x\ndefinition:\n  " + bomb.replace("\n", "\n  ")),
                          headers={**admin.headers, "content-type": "application/yaml"})
    assert_problem(r, 413, "too_large")


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity", "1e999"])
async def test_nan_and_infinity_are_422_naming_the_field(client, admin, api_channel, constant):
    h = {**admin.headers, "content-type": "application/json"}
    r = await client.post("/api/v1/contacts", content=f'{{"name": "x", "attributes": {{"a": {constant}}}}}',
                          headers=h)
    body = assert_problem(r, 422, "validation_failed")
    assert body["errors"][0]["field"] == "attributes.a", body
    assert (await client.get("/api/v1/contacts", headers=admin.headers)).json()["items"] == [], "nothing stored"
    token = api_channel["generated_credentials"]["inbound_token"]
    r = await client.post(f"/webhooks/{api_channel['id']}", headers={"Authorization": f"Bearer {token}",
                                                                     "content-type": "application/json"},
                          content=f'{{"id": "m1", "contact": {{"id": "c1"}}, "text": "hi", "attributes": '
                                  f'{{"score": {constant}}}}}')
    body = assert_problem(r, 422, "validation_failed")
    assert body["errors"][0]["field"] == "attributes.score", body


async def test_nan_in_a_yaml_flow_is_422_naming_the_field(client, admin):
    r = await client.post("/api/v1/bot/flows", content=b"name: x\ndefinition:\n  settings:\n    limit: .nan\n",
                          headers={**admin.headers, "content-type": "application/yaml"})
    body = assert_problem(r, 422, "validation_failed")
    assert body["errors"][0]["field"] == "definition.settings.limit", body
    r = await client.post("/api/v1/bot/flows", json={"name": "x", "source": "settings:\n  limit: -.inf\n"},
                          headers=admin.headers)
    body = assert_problem(r, 422, "validation_failed")
    assert body["errors"][0]["field"] == "definition.settings.limit", body


async def test_booleans_are_not_integers(client, admin, api_channel):
    r = await client.post("/api/v1/queues", json={"name": "Q", "priority": True}, headers=admin.headers)
    body = assert_problem(r, 422, "validation_failed")
    assert body["errors"][0]["field"] == "priority", body
    team = (await client.post("/api/v1/teams", json={"name": "T"}, headers=admin.headers)).json()
    r = await client.put(f"/api/v1/teams/{team['id']}/members", json={"user_ids": [admin.id, True]},
                         headers=admin.headers)
    assert_problem(r, 422, "validation_failed")
    r = await client.post("/api/v1/channels", json={"type": "webchat", "name": "W", "settings": {"max_file_mb": True}},
                          headers=admin.headers)
    body = assert_problem(r, 422, "invalid_channel_config")
    assert body["errors"][0]["field"] == "settings.max_file_mb", body
    # What was accepted before still is: numbers, numbers as text, times as text.
    r = await client.post("/api/v1/queues", json={"name": "Q", "priority": "5"}, headers=admin.headers)
    assert r.status_code == 201 and r.json()["priority"] == 5, r.text
    cid = (await post_inbound(client, api_channel, msg_id="m1", contact="c1")).json()["conversation_id"]
    r = await client.post(f"/api/v1/conversations/{cid}/status", headers=admin.headers,
                          json={"status": "snoozed", "snoozed_until": "2099-01-01T09:00:00Z"})
    assert r.status_code == 200 and r.json()["snoozed_until"].startswith("2099-01-01T09:00"), r.text


@pytest.mark.parametrize(("method", "path", "allow"), [
    ("OPTIONS", "/api/v1/users", "GET, POST"),
    ("OPTIONS", "/api/v1/bot/flows/1", "GET, PUT, DELETE"),
    ("PUT", "/api/v1/contacts", "GET, POST"),
    ("DELETE", "/api/v1/users", "GET, POST"),
    ("OPTIONS", "/webhooks/1", "GET, HEAD, POST"),
])
async def test_a_method_a_path_lacks_is_405_listing_the_methods_it_has(client, admin, method, path, allow):
    r = await client.request(method, path, headers=admin.headers)
    assert_problem(r, 405, "method_not_allowed")
    assert r.headers["allow"] == allow


async def test_multipart_webhook_bodies_are_413_as_soon_as_the_limit_is_passed(client, api_channel):
    """The test settings allow 64 kB; a 20 MB multipart webhook is cut off after the first chunks."""
    sent = 0

    async def chunks():  # type: ignore[no-untyped-def]
        nonlocal sent
        yield b'--b\r\nContent-Disposition: form-data; name="f"; filename="a"\r\n\r\n'
        for _ in range(2000):
            sent += 10_000
            yield b"z" * 10_000
        yield b"\r\n--b--\r\n"

    for ctype in ("multipart/form-data; boundary=b", "application/octet-stream", "text/plain"):
        sent = 0
        r = await client.post(f"/webhooks/{api_channel['id']}", content=chunks(), headers={"content-type": ctype})
        assert_problem(r, 413, "body_too_large")
        assert sent <= 100_000, f"{sent} bytes read before refusing {ctype}"
    # A declared length over the limit is refused before reading anything.
    r = await client.post(f"/webhooks/{api_channel['id']}", content=b"z" * 70_000,
                          headers={"content-type": "multipart/form-data; boundary=b"})
    assert_problem(r, 413, "body_too_large")


async def test_uploads_keep_the_upload_limit(client, admin, api_channel):
    sent = await post_inbound(client, api_channel, msg_id="m1", contact="c1")
    cid = sent.json()["conversation_id"]
    r = await client.post(f"/api/v1/conversations/{cid}/attachments", headers=admin.headers,
                          files={"file": ("a.txt", b"a" * 100_000, "text/plain")}, data={"kind": "note"})
    assert r.status_code == 201, r.text


CODE = re.compile(r"^[a-z][a-z0-9_]*$")
_MAKERS = {"ProblemError": 1, "UnsafeInput": 1, "problem_response": 1}


def _codes_in_source() -> list[tuple[str, str]]:
    """Every error code written in the source: ProblemError/problem_response codes, not_found names,
    "code" keys of socket frames, close reasons."""
    found: list[tuple[str, str]] = []
    for path in SRC.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        where = str(path.relative_to(SRC))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
                arg: ast.expr | None = None
                if name in _MAKERS and len(node.args) > _MAKERS[name]:
                    arg = node.args[_MAKERS[name]]
                elif name == "not_found" and node.args:
                    arg = node.args[0]
                elif name == "close":
                    arg = next((k.value for k in node.keywords if k.arg == "reason"), None)
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    found.append((where, arg.value + ("_not_found" if name == "not_found" else "")))
                elif isinstance(arg, ast.JoinedStr):
                    literal = "".join(v.value for v in arg.values if isinstance(v, ast.Constant))
                    found.append((where, literal.replace(" ", "<space>") or "x"))
            elif isinstance(node, ast.Dict):
                for key, value in zip(node.keys, node.values, strict=True):
                    if isinstance(key, ast.Constant) and key.value == "code" and isinstance(value, ast.Constant) \
                            and isinstance(value.value, str):
                        found.append((where, value.value))
    return found


def test_every_error_code_is_a_snake_case_identifier():
    codes = _codes_in_source()
    assert len(codes) > 150, f"the scan found only {len(codes)} codes; has the way errors are raised changed?"
    bad = [(where, code) for where, code in codes if not CODE.match(code.strip("_") or "x")]
    assert bad == [], f"error codes must match {CODE.pattern} (not_found takes a snake_case name): {bad}"


async def test_not_found_codes_as_answered(client, admin):
    for path, code in (("/api/v1/canned-responses/4242", "canned_response_not_found"),
                       ("/api/v1/bot/flows/4242", "bot_flow_not_found")):
        r = await client.get(path, headers=admin.headers)
        if r.status_code == 405:
            r = await client.delete(path, headers=admin.headers)
        assert_problem(r, 404, code)


def test_every_api_route_reads_json_through_the_safe_reader(app):
    """A router created without route_class=SafeRoute would parse bodies with FastAPI's unbounded json.loads."""
    from fastapi.routing import APIRoute

    from kommutator.common.routes import SafeRoute

    def walk(routes):  # type: ignore[no-untyped-def]
        for route in routes:
            if isinstance(route, APIRoute):
                yield route
            elif hasattr(route, "original_router"):  # an included router
                yield from walk(route.original_router.routes)

    routes = list(walk(app.router.routes))
    assert len(routes) > 100
    unsafe = [r.path for r in routes if r.body_field is not None and not isinstance(r, SafeRoute)]
    assert unsafe == [], f"create these routers with route_class=SafeRoute (common/routes.py): {unsafe}"

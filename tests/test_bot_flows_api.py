"""/api/v1/bot/flows: flows in JSON or YAML, validated on save with every problem at its exact place, versioned,
attached to channels; supervisors and administrators write, agents read."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from kommutator.bot.flow import load_default


@pytest.fixture
def flow_def() -> dict[str, Any]:
    return load_default()


async def make_channel(client, admin, name: str = "Site") -> int:  # type: ignore[no-untyped-def]
    r = await client.post("/api/v1/channels", headers=admin.headers, json={"type": "api", "name": name})
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


async def test_create_read_list_and_version_a_flow(client, admin, flow_def):
    channel = await make_channel(client, admin)
    r = await client.post("/api/v1/bot/flows", headers=admin.headers,
                          json={"name": "Shop", "definition": flow_def, "channel_ids": [channel]})
    assert r.status_code == 201, r.text
    flow = r.json()
    assert (flow["version"], flow["enabled"], flow["channel_ids"]) == (1, True, [channel])
    assert flow["definition"]["nodes"]["main"]["type"] == "menu" and flow["warnings"] == []
    listed = (await client.get("/api/v1/bot/flows", headers=admin.headers)).json()["items"]
    assert [(f["name"], f["version"]) for f in listed] == [("Shop", 1)] and "definition" not in listed[0]
    same = await client.put(f"/api/v1/bot/flows/{flow['id']}", headers=admin.headers,
                            json={"definition": flow_def})
    assert same.json()["version"] == 1, "saving the same definition makes no new version"
    changed = copy.deepcopy(flow_def)
    changed["nodes"]["greeting"]["text"] = {"ru": "Добрый день!", "en": "Good afternoon!"}
    r = await client.put(f"/api/v1/bot/flows/{flow['id']}", headers=admin.headers, json={"definition": changed})
    assert r.status_code == 200 and r.json()["version"] == 2
    versions = (await client.get(f"/api/v1/bot/flows/{flow['id']}/versions", headers=admin.headers)).json()
    assert [v["version"] for v in versions["items"]] == [2, 1]
    v1 = (await client.get(f"/api/v1/bot/flows/{flow['id']}/versions/1", headers=admin.headers)).json()
    assert v1["definition"]["nodes"]["greeting"]["text"]["en"].startswith("Hello!")
    r = await client.get(f"/api/v1/bot/flows/{flow['id']}/versions/9", headers=admin.headers)
    assert (r.status_code, r.json()["code"]) == (404, "bot_flow_version_not_found")


async def test_a_flow_in_yaml_is_accepted_as_yaml(client, admin, flow_def):
    body = yaml.safe_dump({"name": "From YAML", "enabled": False, "definition": flow_def}, allow_unicode=True)
    r = await client.post("/api/v1/bot/flows", headers={**admin.headers, "content-type": "application/yaml"},
                          content=body.encode())
    assert r.status_code == 201, r.text
    assert (r.json()["name"], r.json()["enabled"]) == ("From YAML", False)
    source = yaml.safe_dump(flow_def, allow_unicode=True)
    r = await client.post("/api/v1/bot/flows", headers=admin.headers, json={"name": "Source", "source": source})
    assert r.status_code == 201, r.text
    assert r.json()["definition"]["start"] == "greeting"


async def test_an_invalid_flow_is_refused_with_every_problem_at_its_place(client, admin, flow_def):
    flow_def["nodes"]["ask_order"]["next"] = "lookup"
    flow_def["nodes"]["main"]["options"][1]["label"] = {"ru": "Статус заказа"}
    flow_def["nodes"]["spam"] = {"type": "carousel"}
    r = await client.post("/api/v1/bot/flows", headers=admin.headers, json={"name": "Bad", "definition": flow_def})
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    problem = r.json()
    assert problem["code"] == "invalid_flow"
    errors = {(e["where"], e["message"]) for e in problem["errors"] if e["level"] == "error"}
    assert ("nodes.ask_order.next", "no node 'lookup'.") in errors
    assert ("nodes.main.options[1].label", "missing translation 'en'.") in errors
    assert any(w == "nodes.spam.type" and m.startswith("unknown node type 'carousel'") for w, m in errors)
    assert problem["detail"].endswith("(and 2 more)")
    assert (await client.get("/api/v1/bot/flows", headers=admin.headers)).json()["items"] == [], "nothing saved"


async def test_broken_yaml_says_where(client, admin):
    r = await client.post("/api/v1/bot/flows", headers=admin.headers,
                          json={"name": "Y", "source": "start: greeting\nnodes:\n  greeting: {type: message\n"})
    assert r.status_code == 422 and r.json()["code"] == "invalid_flow_source"
    assert "line 4" in r.json()["detail"] or "line 3" in r.json()["detail"], r.json()["detail"]
    r = await client.post("/api/v1/bot/flows", headers={**admin.headers, "content-type": "application/yaml"},
                          content=b"name: [unclosed")
    assert r.status_code == 400 and r.json()["code"] == "invalid_body"
    r = await client.post("/api/v1/bot/flows", headers=admin.headers, json={"name": "Both"})
    assert (r.status_code, r.json()["code"]) == (422, "definition_required")


async def test_validate_is_a_dry_run_with_warnings(client, admin, flow_def):
    flow_def["nodes"]["lost"] = {"type": "message", "text": {"ru": "а", "en": "a"}, "next": "main"}
    r = await client.post("/api/v1/bot/flows/validate", headers=admin.headers, json={"definition": flow_def})
    assert r.status_code == 200
    assert r.json() == {"valid": True, "problems": [
        {"where": "nodes.lost", "message": "unreachable from start 'greeting'.", "level": "warning"}]}
    flow_def["start"] = "nowhere"
    r = await client.post("/api/v1/bot/flows/validate", headers=admin.headers, json={"definition": flow_def})
    assert r.json()["valid"] is False
    assert {"where": "start", "message": "no node 'nowhere'.", "level": "error"} in r.json()["problems"]
    assert (await client.get("/api/v1/bot/flows", headers=admin.headers)).json()["items"] == []


async def test_a_channel_has_one_flow_and_attaching_moves_it(client, admin, flow_def):
    channel = await make_channel(client, admin)
    a = (await client.post("/api/v1/bot/flows", headers=admin.headers,
                           json={"name": "A", "definition": flow_def, "channel_ids": [channel]})).json()
    b = (await client.post("/api/v1/bot/flows", headers=admin.headers,
                           json={"name": "B", "definition": flow_def, "channel_ids": [channel]})).json()
    assert b["channel_ids"] == [channel]
    assert (await client.get(f"/api/v1/bot/flows/{a['id']}", headers=admin.headers)).json()["channel_ids"] == []
    r = await client.put(f"/api/v1/bot/flows/{a['id']}", headers=admin.headers, json={"channel_ids": [999]})
    assert (r.status_code, r.json()["code"]) == (422, "channel_not_found")
    r = await client.post("/api/v1/bot/flows", headers=admin.headers, json={"name": "A", "definition": flow_def})
    assert (r.status_code, r.json()["code"]) == (409, "flow_name_taken")
    assert (await client.delete(f"/api/v1/bot/flows/{b['id']}", headers=admin.headers)).status_code == 204
    assert (await client.get(f"/api/v1/bot/flows/{b['id']}", headers=admin.headers)).status_code == 404


async def test_agents_read_flows_but_only_supervisors_and_admins_write(client, admin, factory, flow_def):
    agent = await factory.user("agent")
    supervisor = await factory.user("supervisor")
    r = await client.post("/api/v1/bot/flows", headers=supervisor.headers, json={"name": "S", "definition": flow_def})
    assert r.status_code == 201, r.text
    flow_id = r.json()["id"]
    assert (await client.get(f"/api/v1/bot/flows/{flow_id}", headers=agent.headers)).status_code == 200
    for method, url, body in [("POST", "/api/v1/bot/flows", {"name": "X", "definition": flow_def}),
                              ("PUT", f"/api/v1/bot/flows/{flow_id}", {"enabled": False}),
                              ("DELETE", f"/api/v1/bot/flows/{flow_id}", None),
                              ("POST", "/api/v1/bot/flows/validate", {"definition": flow_def})]:
        r = await client.request(method, url, headers=agent.headers, json=body)
        assert r.status_code == 403, (method, url, r.text)
    assert (await client.get("/api/v1/bot/flows")).status_code == 401


async def test_the_bot_session_is_seen_only_by_who_may_see_the_conversation(client, admin, factory, flow_def):
    from .conftest import post_inbound

    team = await factory.team("Support")
    other = await factory.team("Other")
    r = await client.post("/api/v1/channels", headers=admin.headers,
                          json={"type": "api", "name": "Site", "team_id": team})
    channel = r.json()
    await client.post("/api/v1/bot/flows", headers=admin.headers,
                      json={"name": "F", "definition": flow_def, "channel_ids": [channel["id"]]})
    assert (await post_inbound(client, channel, msg_id="s-1", contact="c-1", text="Привет")).status_code == 200
    conv_id = (await client.get("/api/v1/conversations", headers=admin.headers)).json()["items"][0]["id"]
    mine = await factory.user("agent", teams=[team])
    stranger = await factory.user("agent", teams=[other])
    r = await client.get(f"/api/v1/bot/conversations/{conv_id}", headers=mine.headers)
    assert r.status_code == 200 and (r.json()["status"], r.json()["flow_version"]) == ("active", 1)
    r = await client.get(f"/api/v1/bot/conversations/{conv_id}", headers=stranger.headers)
    assert r.status_code == 404

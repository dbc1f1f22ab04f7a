"""Proactive web chat invitations through the HTTP API: rules kept in the channel's settings (checked), handed to
the widget with the session, counted shown and accepted by the widget's reports, read in the channel's stats."""

from __future__ import annotations

from typing import Any

RULES = [{"id": "help", "text_en": "Need help?", "text_ru": "Нужна помощь?", "after_seconds": 20,
          "url_pattern": "*/pricing*"},
         {"id": "old", "text_en": "Hello again", "text_ru": "Снова здравствуйте", "returning": True, "enabled": False}]


async def _chat(client: Any, admin: Any, invitations: list[dict[str, Any]]) -> Any:
    r = await client.post("/api/v1/channels", headers=admin.headers, json={
        "type": "webchat", "name": "Site", "settings": {"invitations": invitations}})
    return r


async def test_invitations_are_kept_handed_to_the_widget_and_counted(client, admin, factory):
    r = await _chat(client, admin, [*RULES, dict(RULES[0])])
    assert r.status_code == 422 and "its own id" in r.text, r.text
    r = await _chat(client, admin, RULES)
    assert r.status_code == 201, r.text
    chat = r.json()["id"]
    r = await client.post(f"/widget/{chat}/session", json={})
    assert r.status_code == 200, r.text
    assert [i["id"] for i in r.json()["channel"]["invitations"]] == ["help"], "disabled ones are not shown"
    assert r.json()["channel"]["invitations"][0] == {
        "id": "help", "text_en": "Need help?", "text_ru": "Нужна помощь?", "after_seconds": 20,
        "url_pattern": "*/pricing*", "returning": None}
    auth = {"Authorization": f"Bearer {r.json()['token']}"}
    r = await client.post(f"/widget/{chat}/invitations/help/shown")
    assert r.status_code == 401, "only a widget with a visitor token reports"
    for event in ("shown", "shown", "accepted"):
        r = await client.post(f"/widget/{chat}/invitations/help/{event}", headers=auth)
        assert r.status_code == 204, r.text
    r = await client.post(f"/widget/{chat}/invitations/nope/shown", headers=auth)
    assert (r.status_code, r.json()["code"]) == (404, "invitation_not_found")
    r = await client.get(f"/api/v1/channels/{chat}/stats", headers=admin.headers)
    assert r.status_code == 200, r.text
    assert r.json()["invitations"] == [
        {"id": "help", "text_en": "Need help?", "text_ru": "Нужна помощь?", "enabled": True, "shown": 2,
         "accepted": 1, "acceptance_rate": 0.5},
        {"id": "old", "text_en": "Hello again", "text_ru": "Снова здравствуйте", "enabled": False, "shown": 0,
         "accepted": 0, "acceptance_rate": None}]
    agent = await factory.user("agent")
    r = await client.get(f"/api/v1/channels/{chat}/stats", headers=agent.headers)
    assert (r.status_code, r.json()["code"]) == (403, "supervisor_required")
    r = await client.get("/api/v1/channels/999999/stats", headers=admin.headers)
    assert r.status_code == 404

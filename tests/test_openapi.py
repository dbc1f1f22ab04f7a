"""The OpenAPI document as integrators meet it: valid, with readable operation ids, the credentials each operation
really takes, typed bodies and files; and a client generated from it by openapi-python-client works against a
real server for a whole integration."""

from __future__ import annotations

import asyncio
import importlib
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate

from kommutator.agents.actions import do_create_user
from kommutator.agents.schemas import UserCreate
from kommutator.auth.actions import do_create_api_token
from kommutator.auth.passwords import hash_password
from kommutator.auth.principal import Principal
from kommutator.config import load_settings
from kommutator.db import Tx
from kommutator.runtime import Runtime

from .conftest import PG_URL, _truncate_all
from .live_server import bound_socket, run_server
from .quality_support import customer_writes, policy, settle

METHODS = ("get", "put", "post", "patch", "delete")


async def _document(client: httpx.AsyncClient) -> dict[str, Any]:
    r = await client.get("/api/v1/openapi.json")
    assert r.status_code == 200, r.text
    doc: dict[str, Any] = r.json()
    return doc


def _operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in doc["paths"].items():
        for method in METHODS:
            if method in item:
                yield method, path, item[method]


async def test_the_document_is_valid_openapi(client):
    validate(await _document(client))


async def test_operation_ids_are_unique_readable_and_named_by_domain(client):
    doc = await _document(client)
    ids = [op["operationId"] for _, _, op in _operations(doc)]
    assert len(ids) > 90 and len(set(ids)) == len(ids), sorted(i for i in ids if ids.count(i) > 1)
    for method, path, op in _operations(doc):
        oid = op["operationId"]
        assert re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)+", oid), f"{method} {path}: {oid} is not snake_case"
        assert "api_v1" not in oid and not oid.endswith(f"_{method}"), f"{method} {path}: framework default {oid}"
        assert len(oid) <= 40, f"{method} {path}: {oid} is too long to read"
        assert op.get("tags"), f"{method} {path} has no tag"
    by_path = {(m, p): op["operationId"] for m, p, op in _operations(doc)}
    assert by_path["post", "/api/v1/conversations/{conversation_id}/messages"] == "conversations_send_message"
    assert by_path["post", "/webhooks/{channel_id}"] == "webhooks_receive"
    assert by_path["get", "/widget/{channel_id}/messages"] == "widget_list_messages"


async def test_security_is_declared_as_each_operation_really_checks_it(client):
    doc = await _document(client)
    schemes = doc["components"]["securitySchemes"]
    assert schemes["bearer"] == {**schemes["bearer"], "type": "http", "scheme": "bearer"}
    assert schemes["session"] == {**schemes["session"], "type": "apiKey", "in": "cookie", "name": "kmt_session"}
    assert schemes["csrf"] == {**schemes["csrf"], "type": "apiKey", "in": "header", "name": "X-CSRF-Token"}
    assert "security" not in doc, "no global scheme: login and the widget take none of the agents' credentials"
    ops = {(m, p): op for m, p, op in _operations(doc)}
    assert ops["post", "/api/v1/auth/login"]["security"] == []
    assert ops["post", "/widget/{channel_id}/session"]["security"] == []
    assert ops["post", "/widget/{channel_id}/messages"]["security"] == [{"widget": []}]
    assert not any(p["name"].lower() == "authorization" for p in ops["get", "/widget/{channel_id}/messages"]
                   .get("parameters", [])), "the visitor token is a security scheme, not a header parameter"
    assert ops["get", "/api/v1/conversations"]["security"] == [{"bearer": []}, {"session": []}]
    assert ops["post", "/api/v1/contacts"]["security"] == [{"bearer": []}, {"session": [], "csrf": []}]
    assert ops["post", "/webhooks/{channel_id}"]["security"] == [{"channel_token": []}, {}]
    # What the document says, the server does: every operation declaring the agents' credentials refuses a
    # caller without them, and the ones declaring none let an anonymous caller past authentication.
    checked = 0
    for (method, path), op in ops.items():
        if method == "get" and "{" not in path and op["security"] == [{"bearer": []}, {"session": []}]:
            r = await client.get(path)
            assert r.status_code == 401, f"GET {path} declares credentials but answered {r.status_code}"
            checked += 1
    assert checked > 15
    r = await client.post("/api/v1/auth/login", json={"email": "nobody@example.com", "password": "x" * 12})
    assert r.status_code == 401 and r.json()["code"] != "not_authenticated", "login takes no credentials"


async def test_bodies_problems_and_files_are_typed(client):
    doc = await _document(client)
    schemas = doc["components"]["schemas"]
    ops = {(m, p): op for m, p, op in _operations(doc)}
    body = ops["post", "/webhooks/{channel_id}"]["requestBody"]
    alternatives = body["content"]["application/json"]["schema"]["anyOf"]
    assert {"$ref": "#/components/schemas/ApiInbound"} in alternatives
    assert {"$ref": "#/components/schemas/TgUpdate"} in alternatives
    assert set(schemas["ApiInbound"]["required"]) == {"id", "contact", "text"}
    assert "`sms`: the provider's own application/x-www-form-urlencoded body" in body["description"]
    assert "`api`: `ApiInbound`" in body["description"]
    assert schemas["Problem"]["properties"]["errors"]["items"] == {"$ref": "#/components/schemas/ProblemFieldError"}
    assert set(schemas["ProblemFieldError"]["required"]) == {"field", "message"}
    assert set(schemas["Problem"]["required"]) == {"type", "title", "status", "code", "detail"}
    for path in ("/api/v1/attachments/{attachment_id}", "/api/v1/messages/{message_id}/raw",
                 "/widget/{channel_id}/attachments/{attachment_id}"):
        content = ops["get", path]["responses"]["200"]["content"]
        assert "application/json" not in content, f"{path} answers a file, not JSON"
        assert all(c["schema"] == {"type": "string", "format": "binary"} for c in content.values()), path
    for method in ("post", "put"):
        flow = ops[method, "/api/v1/bot/flows" if method == "post" else "/api/v1/bot/flows/{flow_id}"]
        assert {"application/json", "application/yaml"} <= set(flow["requestBody"]["content"])
    # A flow definition is free-form by nature; every other JSON answer has a schema of its own.
    for (method, path), op in ops.items():
        for code, response in op["responses"].items():
            json_schema = response.get("content", {}).get("application/json", {}).get("schema")
            if code.startswith("2") and json_schema is not None and path != "/api/v1/bot/default-flow":
                assert "$ref" in str(json_schema), f"{method.upper()} {path} {code} answers an untyped {json_schema}"
    for (method, path), op in ops.items():
        if method == "delete":
            assert set(op["responses"]) & {"200", "201", "204"} == {"204"}, f"DELETE {path} answers 204"
            assert "content" not in op["responses"]["204"]


async def test_the_supervisors_live_view_answers_as_declared(client, runtime, clock, factory, admin):
    team = await factory.team("Support")
    agent = await factory.user("agent", teams=[team])
    supervisor = await factory.user("supervisor", teams=[team])
    r = await client.post("/api/v1/channels", json={"type": "api", "name": "CRM", "team_id": team},
                          headers=admin.headers)
    assert r.status_code == 201, r.text
    channel = r.json()
    r = await client.post("/api/v1/queues", json={"name": "Orders", "team_id": team}, headers=admin.headers)
    assert r.status_code == 201, r.text
    await policy(client, admin, first_response_seconds=100, warn_percent=80)
    cid = await customer_writes(client, channel, "c1", "my parcel is late")
    r = await client.post(f"/api/v1/conversations/{cid}/assign", json={"assignee_id": agent.id}, headers=admin.headers)
    assert r.status_code == 200, r.text
    await settle(runtime)
    r = await client.get("/api/v1/quality/live", headers=supervisor.headers)
    assert r.status_code == 200, r.text
    live = r.json()
    assert live["queues"] and live["agents"] and live["at_risk"][0]["conversation_id"] == cid
    doc = await _document(client)
    declared = doc["paths"]["/api/v1/quality/live"]["get"]["responses"]["200"]["content"]["application/json"]
    assert declared["schema"] == {"$ref": "#/components/schemas/LiveView"}
    OAS31Validator({**declared["schema"], "components": doc["components"]}).validate(live)


# A whole integration through a client generated from the document, against a real server.

async def _seed_admin(settings) -> str:  # type: ignore[no-untyped-def]
    rt = Runtime.build(settings)
    await rt.db.start()
    try:
        async def job(tx: Tx) -> str:
            user = await do_create_user(tx, None, UserCreate(email="integrator@example.com", name="Integrator",
                                                             password="integrator-password", role="admin"),
                                        password_hash=hash_password("integrator-password"))
            p = Principal(user_id=user.id, name="Integrator", role="admin", team_ids=frozenset())
            return (await do_create_api_token(tx, p, "generated client"))[1]

        token: str = await rt.db.write(job)
        return token
    finally:
        await rt.db.close()


@pytest.fixture(scope="module")
def live(database_template: str, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    tmp = tmp_path_factory.mktemp("openapi")
    if PG_URL:
        asyncio.run(_truncate_all(database_template))
        url = database_template
    else:
        shutil.copy(database_template, Path(tmp) / "openapi.db")
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'openapi.db'}"
    sock, port = bound_socket()
    st = load_settings(data_dir=Path(tmp) / "data", database_url=url, listen_port=port,
                       secret_key="openapi-secret-" + "k" * 32)
    token = asyncio.run(_seed_admin(st))
    with run_server(st, sock) as base:
        yield base, token
    if PG_URL:
        asyncio.run(_truncate_all(database_template))


@pytest.fixture(scope="module")
def generated(live, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:  # type: ignore[no-untyped-def]
    """The client openapi-python-client generates from the served document, imported as a package."""
    base, _ = live
    out = tmp_path_factory.mktemp("client")
    spec = out / "openapi.json"
    spec.write_bytes(httpx.get(f"{base}/api/v1/openapi.json", timeout=120).content)
    cli = Path(sys.executable).parent / "openapi-python-client"
    done = subprocess.run([str(cli), "generate", "--path", str(spec), "--meta", "none",
                           "--output-path", str(out / "kommutator_client")],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    sys.path.insert(0, str(out))
    try:
        yield importlib.import_module("kommutator_client")
    finally:
        sys.path.remove(str(out))
        for name in [m for m in sys.modules if m == "kommutator_client" or m.startswith("kommutator_client.")]:
            del sys.modules[name]


def _mod(package: ModuleType, name: str) -> Any:
    return importlib.import_module(f"{package.__name__}.{name}")


def test_a_generated_client_runs_a_whole_integration(live, generated):
    base, token = live
    api, models = f"{generated.__name__}.api", _mod(generated, "models")

    def op(tag: str, operation: str) -> Any:
        return importlib.import_module(f"{api}.{tag}.{operation}")

    admin = generated.AuthenticatedClient(base_url=base, token=token)
    channel = op("channels", "channels_create_channel").sync(
        client=admin, body=models.ChannelCreate(type_="api", name="CRM"))
    assert isinstance(channel, models.ChannelCreated), channel
    inbound_token = channel.generated_credentials["inbound_token"]

    # The integrator's system posts a customer's message to the API channel's webhook.
    crm = generated.AuthenticatedClient(base_url=base, token=inbound_token)
    message = models.ApiInbound(id="crm-msg-1", contact=models.ApiContact(id="crm-42", name="Ivan"),
                                text="Where is my order?")
    ack = op("webhooks", "webhooks_receive").sync(channel.id, client=crm, body=message)
    assert isinstance(ack, models.WebhookAck) and ack.ok and ack.duplicate is False, ack
    again = op("webhooks", "webhooks_receive").sync(channel.id, client=crm, body=message)
    assert isinstance(again, models.WebhookAck) and again.duplicate is True

    # An agent's tool lists conversations, reads the original and replies.
    page = op("conversations", "conversations_list_conversations").sync(client=admin)
    assert isinstance(page, models.ConversationList), page
    (conv,) = [c for c in page.items if c.id == ack.conversation_id]
    assert conv.contact_name == "Ivan"
    raw = op("conversations", "conversations_download_raw_message").sync(ack.message_id, client=admin)
    assert isinstance(raw, generated.types.File), raw
    assert b"Where is my order?" in raw.payload.read()
    reply = op("conversations", "conversations_send_message").sync(
        conv.id, client=admin, body=models.MessageCreate(text="It ships today."))
    assert isinstance(reply, models.MessageRead) and reply.text == "It ships today.", reply

    # A contact is created; a mistake comes back as a Problem whose errors are typed.
    contact = op("contacts", "contacts_create_contact").sync(
        client=admin, body=models.ContactCreate(name="Olga", email="olga@example.com"))
    assert isinstance(contact, models.ContactRead) and contact.email == "olga@example.com", contact
    wrong = op("contacts", "contacts_create_contact").sync(
        client=admin, body=models.ContactCreate(name="Bad", email="not an address"))
    assert isinstance(wrong, models.Problem) and wrong.status == 422 and wrong.code == "validation_failed", wrong
    assert isinstance(wrong.errors[0], models.ProblemFieldError) and wrong.errors[0].field == "email"
    missing = op("contacts", "contacts_get_contact").sync(999_999, client=admin)
    assert isinstance(missing, models.Problem) and missing.status == 404, missing
    refused = op("webhooks", "webhooks_receive").sync(
        channel.id, client=generated.AuthenticatedClient(base_url=base, token="kmi_wrong"), body=message)
    assert isinstance(refused, models.Problem) and refused.code == "invalid_channel_token", refused

    # A delete answers 204 with no body, which the client reads as nothing.
    created = op("auth", "auth_create_token").sync(client=admin, body=models.ApiTokenCreate(name="spare"))
    assert isinstance(created, models.ApiTokenCreated)
    revoked = op("auth", "auth_revoke_token").sync_detailed(created.id, client=admin)
    assert revoked.status_code == 204 and revoked.content == b"" and revoked.parsed is None

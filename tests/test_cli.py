"""The `kommutator` command as a newcomer runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import httpx
import pytest

from .conftest import PG_URL
from .live_server import free_port


def kommutator(*args: str, cwd, env=None, stdin: str | None = None) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("KOMMUTATOR_")}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "kommutator.cli", *args], cwd=cwd, env=full_env, input=stdin,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("args", [[], ["serve"], ["demo"], ["migrate"], ["user", "create"], ["reports", "rebuild"]])
def test_help_on_every_command(tmp_path, args):
    r = kommutator(*args, "--help", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "Usage:" in r.stdout


def test_user_create_reports_and_refuses_duplicates_and_weak_passwords(tmp_path):
    env = {"KOMMUTATOR_DATA_DIR": str(tmp_path / "data")}
    r = kommutator("user", "create", "--email", "Boss@Example.com", "--name", "Boss", "--role", "admin",
                   cwd=tmp_path, env=env, stdin="long-enough-password\n")
    assert r.returncode == 0, r.stderr
    assert "Created admin boss@example.com" in r.stdout
    again = kommutator("user", "create", "--email", "boss@example.com", "--name", "B", cwd=tmp_path, env=env,
                       stdin="long-enough-password\n")
    assert again.returncode != 0 and "already exists" in again.stderr
    short = kommutator("user", "create", "--email", "x@example.com", "--name", "X", "--password", "short",
                       cwd=tmp_path, env=env)
    assert short.returncode != 0 and "password" in short.stderr


def test_bad_configuration_is_a_clear_error(tmp_path):
    r = kommutator("migrate", cwd=tmp_path, env={"KOMMUTATOR_DATA_DIR": str(tmp_path / "d"),
                                                  "KOMMUTATOR_LISTEN_PORT": "nope"})
    assert r.returncode != 0
    assert "KOMMUTATOR_LISTEN_PORT" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.skipif(bool(PG_URL), reason="the demo is the embedded SQLite set-up; PostgreSQL runs cover the rest")
def test_demo_seeds_once_serves_and_delivers_replies(tmp_path):
    env = {"KOMMUTATOR_DATA_DIR": str(tmp_path / "data")}
    port = free_port()
    first = kommutator("demo", "--no-serve", "--port", str(port), cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stderr
    assert "demo seeded" in first.stdout and "admin@demo.kommutator.dev" in first.stdout
    second = kommutator("demo", "--no-serve", "--port", str(port), cwd=tmp_path, env=env)
    assert "already seeded" in second.stdout
    proc = subprocess.Popen([sys.executable, "-m", "kommutator.cli", "demo", "--port", str(port)], cwd=tmp_path,
                            env={**{k: v for k, v in os.environ.items() if not k.startswith("KOMMUTATOR_")}, **env},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_until(lambda: _healthy(base), "the demo server did not start", 180)  # seeds 90 days of history first
        with httpx.Client(base_url=base) as c:
            r = c.post("/api/v1/auth/login", json={"email": "anna@demo.kommutator.dev",
                                                   "password": "demo-agent-2026"})
            assert r.status_code == 200, r.text
            csrf = r.json()["csrf_token"]
            convs = c.get("/api/v1/conversations").json()["items"]
            assert len(convs) >= 2, "the demo agent should see conversations at once"
            reply = c.post(f"/api/v1/conversations/{convs[0]['id']}/messages", json={"text": "Checking now"},
                           headers={"X-CSRF-Token": csrf})
            assert reply.status_code == 201, reply.text

            def delivered() -> bool:
                items = c.get(f"/api/v1/conversations/{convs[0]['id']}/messages").json()["items"]
                return [m["status"] for m in items if m["id"] == reply.json()["id"]] == ["sent"]

            _wait_until(delivered, "the reply was not delivered to the demo CRM")
        received = (tmp_path / "data" / "demo-integrator.jsonl").read_text(encoding="utf-8")
        assert "Checking now" in received
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _healthy(base: str) -> bool:
    try:
        return httpx.get(base + "/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _wait_until(check, message: str, seconds: float = 20) -> None:  # type: ignore[no-untyped-def]
    import time

    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, message
        time.sleep(0.1)


@pytest.mark.skipif(bool(PG_URL), reason="the demo is the embedded SQLite set-up")
def test_demo_on_another_port_names_that_port_and_shows_the_bot_canned_sla_and_csat(tmp_path):
    """`kommutator demo --port N`: the widget snippet, webhook URLs and the bot's help links name port N; the
    bot greets on the shop's web chat too; canned responses, an SLA policy and the rating question are set."""
    import asyncio

    from kommutator.app import create_app
    from kommutator.config import load_settings
    from kommutator.runtime import Runtime

    port = free_port()
    data = tmp_path / "data"
    seeded = kommutator("demo", "--no-serve", "--port", str(port), cwd=tmp_path, env={"KOMMUTATOR_DATA_DIR": str(data)})
    assert seeded.returncode == 0, seeded.stderr
    base = f"http://127.0.0.1:{port}"
    assert f"Open {base}/" in seeded.stdout

    async def look() -> None:
        rt = Runtime.build(load_settings(data_dir=data, listen_port=port))
        assert rt.settings.public_base_url == base
        await rt.db.start()
        try:
            transport = httpx.ASGITransport(app=create_app(runtime=rt), client=("127.0.0.1", 40000))
            async with httpx.AsyncClient(transport=transport, base_url=base) as c:
                r = await c.post("/api/v1/auth/login", json={"email": "admin@demo.kommutator.dev",
                                                             "password": "demo-admin-2026"})
                assert r.status_code == 200, r.text
                channels = (await c.get("/api/v1/channels")).json()
                by_type: dict[str, dict[str, Any]] = {}
                for ch in channels:  # the first of each type: the demo's own (the history adds a mobile-app API)
                    by_type.setdefault(ch["type"], ch)
                chat = (await c.get(f"/api/v1/channels/{by_type['webchat']['id']}")).json()
                assert f'<script src="{base}/widget.js"' in chat["setup"], chat["setup"]
                api = (await c.get(f"/api/v1/channels/{by_type['api']['id']}")).json()
                assert api["webhook_url"] == f"{base}/webhooks/{api['id']}"
                assert ":8000" not in chat["setup"] + api["setup"]
                flows = (await c.get("/api/v1/bot/flows")).json()["items"]
                attached = {cid for f in flows for cid in f["channel_ids"]}
                assert {by_type["webchat"]["id"], by_type["api"]["id"]} <= attached, flows
                canned = (await c.get("/api/v1/canned-responses")).json()
                assert {"hello", "privet"} <= {x["shortcut"] for x in canned}
                policies = (await c.get("/api/v1/quality/policies")).json()
                assert policies and policies[0]["first_response_seconds"] == 120
                csat = (await c.get("/api/v1/quality/csat")).json()
                assert any(x["channel_id"] is None and x["enabled"] for x in csat), csat
                queues = (await c.get("/api/v1/queues")).json()
                queues = queues["items"] if isinstance(queues, dict) else queues
                assert all(q["accept_timeout_seconds"] == 0 for q in queues), "no agent is set away by surprise"
        finally:
            await rt.db.close()

    asyncio.run(look())

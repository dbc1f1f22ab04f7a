"""`kommutator demo`: a newcomer posting to the demo API channel (docs/api.md) meets the bot, which looks the
order up in the demo CRM on the same server (through the guarded client and the demo's allow-list) and answers
through the channel to the demo integrator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import httpx
import pytest

from kommutator.demo.seed import DEMO_INBOUND_TOKEN

from .conftest import PG_URL
from .live_server import free_port


def _wait(check, message: str, seconds: float = 30) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, message
        time.sleep(0.1)


@pytest.mark.skipif(bool(PG_URL), reason="the demo is the embedded SQLite set-up")
def test_a_newcomer_on_the_demo_channel_gets_the_order_status_from_the_demo_crm(tmp_path):
    env = {"KOMMUTATOR_DATA_DIR": str(tmp_path / "data")}
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "kommutator.cli", "demo", "--port", str(port)], cwd=tmp_path,
                            env={**{k: v for k, v in os.environ.items() if not k.startswith("KOMMUTATOR_")}, **env},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    received = tmp_path / "data" / "demo-integrator.jsonl"

    def texts() -> list[str]:
        if not received.exists():
            return []
        lines = [json.loads(line)["message"] for line in received.read_text("utf-8").splitlines()]
        return [m["text"] for m in lines if m["contact"]["id"] == "newcomer"]  # not the seeded replies

    try:
        base = f"http://127.0.0.1:{port}"

        def healthy() -> bool:
            try:
                return httpx.get(base + "/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        _wait(healthy, "the demo server did not start", 180)  # seeds 90 days of history first
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {DEMO_INBOUND_TOKEN}"}) as c:
            for n, text in enumerate(["Здравствуйте!", "Статус заказа", "12345"]):
                before = len(texts())
                r = c.post("/webhooks/1", json={"id": f"newcomer-{n}", "text": text,
                                                "contact": {"id": "newcomer", "name": "Новичок"}})
                assert r.status_code == 200, r.text
                _wait(lambda before=before: len(texts()) > before, f"the bot did not answer {text!r}")
        _wait(lambda: any(t.startswith("Заказ 12345: передан в доставку") for t in texts()),
              f"no order status from the demo CRM: {texts()}")
        assert texts()[0].startswith("Здравствуйте! Я виртуальный помощник")
        assert "2. Статус заказа" in texts()[1], "the API channel has no buttons: numbered options"
    finally:
        proc.terminate()
        proc.wait(timeout=20)

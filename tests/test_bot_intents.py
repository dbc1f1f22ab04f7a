"""Intents as the business's data (API, background training, saved models), and the bot understanding more:
answers from the knowledge base, the first message, negation and the wrong keyboard layout — end to end
through the webhook, the bot worker and the outbox, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest

from kommutator.bot import intent_training
from kommutator.bot.intent_training import IntentRegistry, IntentTrainer, intents_of
from kommutator.bot.nlu import IntentModel
from kommutator.bot.worker import BotWorker, bot_worker_of
from kommutator.knowledge.seed import seed_articles
from kommutator.workers.outbox import OutboxWorker

from .bot_helpers import attach_flow, conversation, session_of
from .fakes.crm import FakeCrm
from .test_bot_inbound import MENU_EN, MENU_RU, Customer

REFUND_TICKET = {
    "name": "lost_parcel",
    "description": "The parcel is lost",
    "examples": {
        "ru": ["посылка потерялась", "мою посылку потеряли", "курьер потерял посылку", "где моя потерянная посылка",
               "посылка пропала", "пропала посылка что делать", "потеряли мой груз", "груз потерян"],
        "en": ["my parcel is lost", "you lost my package", "the courier lost my parcel", "package went missing",
               "parcel missing what now", "lost shipment", "my shipment was lost", "the box never arrived, lost"],
    },
    "synonyms": {"ru": ["потеря посылки"], "en": ["lost parcel"]},
}


@pytest.fixture
def settings(settings):  # type: ignore[no-untyped-def]
    settings.outbound_allow_hosts = ["127.0.0.1"]
    return settings


@pytest.fixture
async def crm() -> AsyncIterator[FakeCrm]:
    fake = FakeCrm()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def trained(runtime) -> IntentTrainer:  # type: ignore[no-untyped-def]
    """The trainer after its first pass: the shipped intents trained and saved, as after a server start."""
    trainer = IntentTrainer(runtime, processes=False)  # in a thread, so a test can hold training up
    await trainer.run_due()
    assert intents_of(runtime).get("ru") is not None and intents_of(runtime).get("en") is not None
    return trainer


@pytest.fixture
async def channel(client, admin, crm, trained):  # type: ignore[no-untyped-def]
    r = await client.post("/api/v1/channels", headers=admin.headers, json={
        "type": "api", "name": "Website", "settings": {"outbound_url": crm.inbox}})
    assert r.status_code == 201, r.text
    await attach_flow(client, admin, r.json()["id"], f"{crm.url}/crm")
    return r.json()


@pytest.fixture
async def workers(runtime, app) -> AsyncIterator[tuple[BotWorker, OutboxWorker]]:  # type: ignore[no-untyped-def]
    bot, outbox = bot_worker_of(runtime), OutboxWorker(runtime, name="intent-tests")
    yield bot, outbox
    await bot.stop()
    await outbox.stop()


# -- intents through the API ------------------------------------------------------------------------------------

async def test_administrators_define_intents_and_others_only_read(client, admin, factory):  # type: ignore[no-untyped-def]
    agent = await factory.user("agent")
    r = await client.post("/api/v1/bot/intents", headers=agent.headers, json=REFUND_TICKET)
    assert r.status_code == 403, r.text
    r = await client.post("/api/v1/bot/intents", headers=admin.headers, json=REFUND_TICKET)
    assert r.status_code == 201, r.text
    created = r.json()
    assert (created["name"], created["builtin"], created["examples"]["ru"][0]) == ("lost_parcel", False,
                                                                                   "посылка потерялась")
    r = await client.get("/api/v1/bot/intents", headers=agent.headers)
    assert r.status_code == 200, r.text
    listed = {i["name"]: i for i in r.json()["items"]}
    assert listed["lost_parcel"]["id"] == created["id"]
    assert listed["order_status"]["builtin"] and listed["order_status"]["examples"]["ru"], "shipped ones listed"
    assert r.json()["training"], "a change asks for a new model"

    for body, status, code in [
        (REFUND_TICKET, 409, "intent_name_taken"),
        ({**REFUND_TICKET, "name": "order_status"}, 409, "intent_name_taken"),
        ({"name": "empty_one", "examples": {"ru": []}}, 422, "intent_examples_required"),
        ({**REFUND_TICKET, "name": "Bad Name"}, 422, None),
        ({**REFUND_TICKET, "name": "other", "examples": {"de": ["hallo"]}}, 422, None),
    ]:
        r = await client.post("/api/v1/bot/intents", headers=admin.headers, json=body)
        assert r.status_code == status, (body, r.text)
        if code:
            assert r.json()["code"] == code, r.text

    r = await client.put(f"/api/v1/bot/intents/{created['id']}", headers=admin.headers,
                         json={"synonyms": {"en": ["missing parcel"]}})
    assert r.status_code == 200, r.text
    assert r.json()["synonyms"] == {"en": ["missing parcel"]} and r.json()["examples"] == created["examples"]
    r = await client.get("/api/v1/bot/intents/models", headers=admin.headers)
    versions = [(m["version"], m["status"]) for m in r.json()["items"]]
    assert versions[:2] == [(2, "pending"), (2, "pending")] and (1, "superseded") in versions, versions
    r = await client.delete(f"/api/v1/bot/intents/{created['id']}", headers=admin.headers)
    assert r.status_code == 204
    r = await client.get(f"/api/v1/bot/intents/{created['id']}", headers=admin.headers)
    assert (r.status_code, r.json()["code"]) == (404, "bot_intent_not_found")


async def test_a_flow_may_use_only_known_intents(client, admin):  # type: ignore[no-untyped-def]
    from kommutator.bot.flow import load_default

    defn = load_default()
    defn["nodes"]["main"]["options"][0]["intent"] = "lost_parcel"
    r = await client.post("/api/v1/bot/flows", headers=admin.headers, json={"name": "x", "definition": defn})
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "invalid_flow"
    assert any(e["where"] == "nodes.main.options[0].intent" and "unknown intent 'lost_parcel'" in e["message"]
               for e in r.json()["errors"]), r.json()
    r = await client.post("/api/v1/bot/flows/validate", headers=admin.headers, json={"definition": defn})
    assert not r.json()["valid"]

    r = await client.post("/api/v1/bot/intents", headers=admin.headers, json=REFUND_TICKET)
    intent_id = r.json()["id"]
    defn["nodes"]["main"]["intent_confidence"] = 0.3
    defn["nodes"]["agent_route"]["branches"].insert(0, {"when": [{"intent": "lost_parcel", "min_confidence": 0.4}],
                                                        "next": "complaint_handoff"})
    r = await client.post("/api/v1/bot/flows", headers=admin.headers, json={"name": "x", "definition": defn})
    assert r.status_code == 201, r.text
    r = await client.delete(f"/api/v1/bot/intents/{intent_id}", headers=admin.headers)
    assert (r.status_code, r.json()["code"], r.json()["flows"]) == (409, "intent_in_use", ["x"])
    r = await client.put(f"/api/v1/bot/intents/{intent_id}", headers=admin.headers, json={"name": "renamed"})
    assert (r.status_code, r.json()["code"]) == (409, "intent_in_use")


async def test_training_runs_in_the_background_saves_the_model_and_reports_on_it(  # type: ignore[no-untyped-def]
        client, admin, runtime, trained):
    r = await client.post("/api/v1/bot/intents", headers=admin.headers, json=REFUND_TICKET)
    assert r.status_code == 201
    r = await client.post("/api/v1/bot/intents/predict", headers=admin.headers,
                          json={"text": "курьер потерял мою посылку", "language": "ru"})
    assert r.json()["intent"] != "lost_parcel", "not trained yet: the model in use is the previous version"
    assert await trained.run_due() == 2
    r = await client.post("/api/v1/bot/intents/predict", headers=admin.headers,
                          json={"text": "курьер потерял мою посылку", "language": "ru"})
    assert r.status_code == 200, r.text
    assert (r.json()["intent"], r.json()["version"]) == ("lost_parcel", 2), r.json()
    r = await client.post("/api/v1/bot/intents/predict", headers=admin.headers,
                          json={"text": "the courier lost my parcel", "language": "en"})
    assert r.json()["intent"] == "lost_parcel", r.json()

    r = await client.get("/api/v1/bot/intents/report", headers=admin.headers, params={"language": "ru"})
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["version"] == 2 and 0 < report["threshold"] < 1
    per_intent = {p["intent"]: p for p in report["per_intent"]}
    assert set(per_intent) >= {"lost_parcel", "order_status", "complaint"}
    assert all(0 <= p["precision"] <= 1 and 0 <= p["recall"] <= 1 for p in per_intent.values())
    assert per_intent["order_status"]["recall"] > 0.5
    assert report["confused"] and all(c["expected"] != c["predicted"] for c in report["confused"])

    # a restart loads the saved model; it does not train again
    def no_training(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("trained at start although a model was saved")

    fresh = IntentTrainer(runtime, processes=False)
    fresh.registry = IntentRegistry()
    original = IntentModel.train
    IntentModel.train = no_training  # type: ignore[method-assign,assignment]
    try:
        assert await fresh.load() == 2
    finally:
        IntentModel.train = original  # type: ignore[method-assign]
    model = fresh.registry.get("ru")
    assert model is not None and model.predict("потеряли мой груз").intent == "lost_parcel"
    assert fresh.registry.version("ru") == 2


async def test_with_the_shipped_intents_turned_off_only_the_business_intents_are_trained(  # type: ignore[no-untyped-def]
        client, admin, runtime):
    runtime.settings.bot_shipped_intents = False
    trainer = IntentTrainer(runtime, processes=False)
    # nothing defined yet: the first version has nothing to train on and says so instead of failing obscurely
    assert await trainer.run_due() == 0
    r = await client.get("/api/v1/bot/intents/models", headers=admin.headers)
    assert {(m["language"], m["status"]) for m in r.json()["items"]} == {("ru", "failed"), ("en", "failed")}
    assert all("at least two intents" in m["error"] for m in r.json()["items"])

    r = await client.post("/api/v1/bot/intents", headers=admin.headers, json=REFUND_TICKET)
    assert r.status_code == 201, r.text
    r = await client.post("/api/v1/bot/intents", headers=admin.headers, json={
        "name": "opening_hours", "examples": {"ru": ["когда вы открыты", "часы работы", "до скольки работаете",
                                                     "во сколько открываетесь", "работаете в субботу"]}})
    assert r.status_code == 201, r.text
    assert await trainer.run_due() == 1  # Russian: two intents; English: one, so no model
    model = intents_of(runtime).get("ru")
    assert model is not None and model.intents == ("lost_parcel", "opening_hours")
    assert model.predict("до скольки вы работаете").intent == "opening_hours"
    r = await client.get("/api/v1/bot/intents", headers=admin.headers)
    assert [i["name"] for i in r.json()["items"]] == ["lost_parcel", "opening_hours"]  # no shipped ones listed


async def test_a_model_saved_in_an_older_format_is_trained_again_not_loaded(runtime):  # type: ignore[no-untyped-def]
    import io
    import json

    import numpy as np

    from kommutator.bot.intent_actions import do_request_training, do_store_model
    from kommutator.bot.nlu import intents as engine

    model = IntentModel.train({"a": ["apple", "apples"], "b": ["banana", "bananas"]}, "en")
    with np.load(io.BytesIO(model.to_bytes())) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(bytes(arrays["meta"]).decode())
    meta["format"] = engine.FORMAT - 1  # saved by the engine before Russian lemmas: its vocabulary means stems
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    version = await runtime.db.write(lambda tx: do_request_training(tx, None))
    for language in ("ru", "en"):
        await runtime.db.write(lambda tx, lang=language: do_store_model(  # type: ignore[misc]
            tx, version, lang, blob=buf.getvalue(), report={}))
    trainer = IntentTrainer(runtime, processes=False)
    await trainer.load()  # no crash: the old models are not used, a new version is asked for
    assert intents_of(runtime).get("ru") is None
    assert await trainer.run_due() == 2
    assert intents_of(runtime).version("ru") == version + 1
    assert intents_of(runtime).get("ru").predict("где мой заказ").intent == "order_status"  # type: ignore[union-attr]


async def test_a_bot_step_never_waits_for_training(client, admin, runtime, channel, workers, crm,  # type: ignore[no-untyped-def]
                                                   trained, monkeypatch):
    started, release = threading.Event(), threading.Event()
    real = intent_training.train_one

    def slow(examples: dict[str, list[str]], language: str) -> Any:
        started.set()
        release.wait(60)
        return real(examples, language)

    monkeypatch.setattr(intent_training, "train_one", slow)
    r = await client.post("/api/v1/bot/intents", headers=admin.headers, json=REFUND_TICKET)
    assert r.status_code == 201
    training = asyncio.create_task(trained.run_due())
    try:
        while not started.is_set():
            await asyncio.sleep(0.01)
        me = Customer(client, channel, workers, crm)
        assert await me.say("Здравствуйте") == [
            "Здравствуйте! Я виртуальный помощник. Отвечу сразу или позову оператора.", MENU_RU]
        assert await me.say("2") == ["Напишите, пожалуйста, номер заказа."], "served while the model trains"
        assert not training.done()
    finally:
        release.set()
        await training
    assert intents_of(runtime).version("ru") == 2


# -- what the customer meets -----------------------------------------------------------------------------------

@pytest.fixture
async def articles(runtime, admin):  # type: ignore[no-untyped-def]
    return await runtime.db.write(lambda tx: seed_articles(tx, admin.id))


async def test_a_typed_question_is_answered_from_the_knowledge_base_in_russian(  # type: ignore[no-untyped-def]
        client, admin, runtime, channel, workers, crm, articles):
    me = Customer(client, channel, workers, crm)
    assert (await me.say("Здравствуйте"))[-1] == MENU_RU
    answer = await me.say("Как вернуть товар?")
    assert len(answer) == 2, answer
    article, ask = answer
    assert article.startswith("Как вернуть или обменять товар\nТовар надлежащего качества"), article
    assert "/help/" in article and "**" not in article and "\n#" not in article and "\n- " not in article, article
    assert ask == "Это помогло?\n1. Да\n2. Нет"
    assert await me.say("да") == ["Рад, что помог! Если появятся вопросы, пишите."]
    conv = await conversation(runtime)
    session = await session_of(runtime, conv.id)
    assert (conv.status, session.outcome) == ("resolved", "contained"), "counted as contained by the bot"
    r = await client.get(f"/api/v1/bot/conversations/{conv.id}", headers=admin.headers)
    trail = r.json()["trail"]
    assert any("Как вернуть или обменять товар" in line and "helped" in line for line in trail), trail


async def test_a_typed_question_is_answered_in_english_and_no_leads_back_to_the_menu(  # type: ignore[no-untyped-def]
        client, runtime, channel, workers, crm, articles):
    me = Customer(client, channel, workers, crm, contact="en-1", language="en")
    assert (await me.say("Hello"))[-1] == MENU_EN
    article, ask = await me.say("How do I return an item?")
    assert article.startswith("Returning or exchanging an item\n") and "/help/" in article, article
    assert ask == "Did this help?\n1. Yes\n2. No"
    again = await me.say("no")
    assert again[0].startswith("Sorry about that. Choose an option below") and "1. New order" in again[0], again
    assert await me.say("agent") != []
    conv = await conversation(runtime)
    assert conv.status != "bot", "the customer who was not helped reached people"
    # an unsure match is not offered: the menu is asked again
    other = Customer(client, channel, workers, crm, contact="en-2", language="en")
    await other.say("Hello")
    assert (await other.say("quantum chromodynamics lecture"))[0].startswith("Sorry, I did not understand")


async def test_a_first_message_that_says_what_it_wants_skips_the_menu(  # type: ignore[no-untyped-def]
        client, runtime, channel, workers, crm):
    me = Customer(client, channel, workers, crm)
    assert await me.say("где мой заказ 12345") == [
        "Здравствуйте! Я виртуальный помощник. Отвечу сразу или позову оператора.",
        "Заказ 12345: передан в доставку.",
        "Могу ли я помочь чем-то ещё?\n1. Да, главное меню\n2. Нет, спасибо\n3. Связаться с оператором"]
    assert crm.lookups == ["12345"]


async def test_declining_an_agent_does_not_hand_off_and_a_wrong_layout_number_is_understood(  # type: ignore[no-untyped-def]
        client, runtime, channel, workers, crm):
    me = Customer(client, channel, workers, crm)
    first = await me.say("оператор не нужен, я сам разберусь")
    assert first[-1] == MENU_RU, first
    assert await me.say("dnjhjq") == ["Напишите, пожалуйста, номер заказа."], "«второй» typed in the English layout"
    other = Customer(client, channel, workers, crm, contact="crm-8")
    await other.say("Здравствуйте")
    again = await other.say("оператор не нужен, я сам разберусь")
    assert again[0].startswith("Извините, я не понял"), again
    conv = await conversation(runtime)
    assert conv.status == "bot", "still with the bot"


_ORPHAN_PARENT = """
import os, sys, time
from kommutator.bot.intent_training import training_pool
pool = training_pool()
print(pool.submit(os.getpid).result(), flush=True)
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting to be reaped has exited)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_the_training_process_exits_when_the_server_is_killed() -> None:
    """The server trains in a child process; a server killed outright (SIGKILL: no shutdown code runs) must not
    leave it behind as an orphan."""
    import os
    import signal
    import subprocess
    import sys
    import time

    parent = subprocess.Popen([sys.executable, "-c", _ORPHAN_PARENT], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    try:
        assert child != parent.pid and _alive(child)
        parent.send_signal(signal.SIGKILL)
        parent.wait(30)
        deadline = time.monotonic() + 60  # generous: the child looks at its parent every PARENT_POLL seconds
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(child), "the training process outlived the server"
    finally:
        if _alive(child):
            os.kill(child, signal.SIGKILL)

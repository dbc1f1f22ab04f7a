"""The ICR bot flow engine: definitions and their validation, the pure runner over the default flow in both
languages, CRM lookups against a real HTTP server on loopback, and the rules that keep a customer from being
trapped (asking for a person, not being understood, any random input)."""

from __future__ import annotations

import copy
import datetime as dt
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kommutator.bot import nodes
from kommutator.bot.engine import (
    CallHttp,
    CodeTyped,
    CustomerMessage,
    Env,
    Flow,
    FlowError,
    Handoff,
    HttpResult,
    KbHit,
    Resolve,
    SendCode,
    SendText,
    SetAttribute,
    Start,
    State,
    Timeout,
    load_default,
    run,
    step,
    validate_flow,
)
from kommutator.contacts.codes import code_matches
from kommutator.net.guard import OutboundGuard
from kommutator.net.http import GuardedClient

OPEN = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)  # a Monday, 13:00 in Moscow: agents at work
NIGHT = dt.datetime(2026, 11, 23, 22, 0, tzinfo=dt.UTC)  # 01:00 in Moscow


@pytest.fixture(scope="module")
def flow() -> Flow:
    return Flow.parse(load_default())


def talk(flow: Flow, inputs: list[Any], env: Env | None = None) -> tuple[State, list[list[Any]]]:
    """Start the flow and feed it inputs (text, or (text, button)); return the last state and each reply."""
    env = env or Env(now=OPEN)
    state, actions = step(flow, State(), Start(), env)
    replies = [actions]
    for item in inputs:
        event = CustomerMessage(*item) if isinstance(item, tuple) else CustomerMessage(item)
        state, actions = step(flow, state, event, env)
        replies.append(actions)
    return state, replies


def texts(actions: list[Any]) -> list[str]:
    return [a.text for a in actions if isinstance(a, SendText)]


def only(actions: list[Any], kind: type) -> Any:
    found = [a for a in actions if isinstance(a, kind)]
    assert len(found) == 1, f"expected one {kind.__name__} in {actions}"
    return found[0]


# --- definitions and validation ------------------------------------------------------------------------------

def test_the_default_flow_validates_without_a_single_problem() -> None:
    assert [str(p) for p in validate_flow(load_default())] == []


def test_every_node_type_is_registered_from_its_own_file() -> None:
    assert nodes.names() == ["condition", "handoff", "http_action", "kb_answer", "menu", "message", "question",
                             "resolve", "set_attribute", "verify_identity"]


def _broken(change: Any) -> list[str]:
    defn = copy.deepcopy(load_default())
    change(defn)
    return [f"{p.level}: {p}" for p in validate_flow(defn)]


def test_a_link_to_a_missing_node_names_the_field_and_the_node() -> None:
    def change(d: dict[str, Any]) -> None:
        d["nodes"]["ask_order"]["next"] = "lookup"

    problems = _broken(change)
    assert "error: nodes.ask_order.next: no node 'lookup'." in problems
    assert "warning: nodes.lookup_order: unreachable from start 'greeting'." in problems


def test_validation_reports_each_kind_of_mistake_where_it_is() -> None:
    def change(d: dict[str, Any]) -> None:
        n = d["nodes"]
        n["greeting"]["next"] = "main_menu"
        n["spam"] = {"type": "carousel"}
        n["main"]["options"][1]["label"] = {"ru": "Статус заказа"}
        n["anything_else"]["options"] = []
        n["order_found"]["text"]["en"] = "Order {order_nmber}: {order_status}."
        n["lookup_order"]["url"] = "{settings.erp_url}/orders/{order_number}"
        n["ask_phone"]["validate"] = "zip"
        n["agent_route"]["branches"][0]["when"][0] = {"var": "tier", "op": "eq", "value": "gold"}
        n["lost"] = {"type": "message", "text": {"ru": "а", "en": "a"}, "next": "main"}
        d["start"] = "hello"

    problems = _broken(change)
    for expected in [
        "error: nodes.greeting.next: no node 'main_menu'.",
        "error: nodes.spam.type: unknown node type 'carousel'; known: condition, handoff, http_action, kb_answer, "
        "menu, message, question, resolve, set_attribute, verify_identity.",
        "error: nodes.main.options[1].label: missing translation 'en'.",
        "error: nodes.anything_else.options: a menu needs at least one option.",
        "error: nodes.order_found.text.en: template refers to unknown var 'order_nmber'.",
        "error: nodes.lookup_order.url: template refers to unknown setting 'erp_url'; add it to \"settings\".",
        "error: nodes.ask_phone.validate: Input should be 'phone', 'email', 'order_number' or 'free_text'.",
        "error: nodes.agent_route.branches[0].when[0].var: no node sets var 'tier'.",
        "error: start: no node 'hello'.",
        "warning: nodes.lost: unreachable from start 'hello'.",
    ]:
        assert expected in problems, f"missing {expected!r} in {problems}"
    assert problems.index("warning: nodes.lost: unreachable from start 'hello'.") > max(
        i for i, p in enumerate(problems) if p.startswith("error")), "errors come before warnings"


def test_structural_mistakes_are_reported_not_raised() -> None:
    assert [str(p) for p in validate_flow([])] == [
        "(flow): a flow definition is an object with name, version, start and nodes."]
    problems = [str(p) for p in validate_flow({"name": "x", "nodes": {"a": "hello"}, "colour": 1})]
    assert "colour: unknown field; a flow has description, escalate, language_default, languages, "\
           "max_misunderstandings, name, nodes, on_timeout, settings, start, texts, version." in problems
    assert "start: required." in problems and "nodes.a: a node is an object with a \"type\"." in problems
    with pytest.raises(FlowError, match="start: required"):
        Flow.parse({"name": "x", "nodes": {}})


def test_a_single_text_in_a_bilingual_flow_is_a_warning_and_a_bad_map_path_an_error() -> None:
    def change(d: dict[str, Any]) -> None:
        d["nodes"]["bye"]["text"] = "Bye!"
        d["nodes"]["lookup_order"]["map"] = {"order_status": "status"}

    problems = _broken(change)
    assert "warning: nodes.bye.text: one text for all of ru, en; give one per language." in problems
    assert ("error: nodes.lookup_order.map.order_status: 'status' is not a path such as $.order.status or "
            "$.items[0].name.") in problems


# --- the default flow, end to end ----------------------------------------------------------------------------

def test_russian_with_buttons_complaint_ends_in_a_handoff_to_the_complaints_queue(flow: Flow) -> None:
    state, replies = talk(flow, [("Оставить жалобу", "complaint"), "Курьер опоздал на три часа"])
    assert texts(replies[0])[0].startswith("Здравствуйте")
    menu = replies[0][-1]
    assert menu.buttons[0] == ("new_order", "Новый заказ") and len(menu.buttons) == 5
    assert texts(replies[1]) == ["Опишите, пожалуйста, что случилось."]
    assert SetAttribute("last_complaint", "Курьер опоздал на три часа") in replies[2]
    handoff = only(replies[2], Handoff)
    assert (handoff.queue, handoff.skills, handoff.priority) == ("complaints", ("complaints",), 2)
    assert "complaint = Курьер опоздал на три часа" in handoff.summary
    assert state.status == "handoff"
    assert step(flow, state, CustomerMessage("ещё тут?"))[1] == [], "after the hand-off the bot stays quiet"


def test_english_with_numbered_answers_new_order_collects_details_and_phone(flow: Flow) -> None:
    _state, replies = talk(flow, ["1", "Two pizzas, please", "my number is +44 20 7946 0958"], Env(language="en"))
    assert replies[0][-1].buttons[1] == ("order_status", "Order status")
    assert texts(replies[1]) == ["What would you like to order? Please describe it in one message."]
    assert texts(replies[2]) == ["Please leave a phone number we can call you on."]
    handoff = only(replies[3], Handoff)
    assert handoff.queue == "sales" and handoff.vars == {"order_details": "Two pizzas, please",
                                                         "phone": "+442079460958"}
    assert "Chose: New order." in handoff.summary and "main:" not in handoff.summary  # no step names
    assert handoff.asked == ("Two pizzas, please", "my number is +44 20 7946 0958")  # not the "1"
    assert handoff.chose == ("New order",)


def test_free_text_chooses_options_and_the_language_follows_the_first_message(flow: Flow) -> None:
    state, actions = step(flow, State(), CustomerMessage("hello"), Env(now=OPEN))
    assert state.language == "en" and state.node == "main" and texts(actions)[-1] == "How can I help you?"
    state, _ = step(flow, state, CustomerMessage("where is my order?"), Env(now=OPEN))
    assert state.node == "ask_order"


def test_offices_answered_from_the_knowledge_base_and_the_customer_is_done(flow: Flow) -> None:
    queries: list[tuple[str, str]] = []

    def search(query: str, language: str) -> list[KbHit]:
        queries.append((query, language))
        return [KbHit("Офисы", "Москва, Тверская 1; Казань, Баумана 5.", "https://example.com/help/offices")]

    env = Env(search=search, now=OPEN)
    state, replies = talk(flow, ["3", ("Да", "yes"), "нет, спасибо"], env)
    assert queries == [("адреса офисов", "ru")]
    assert texts(replies[1]) == ["Офисы\nМосква, Тверская 1; Казань, Баумана 5.\nhttps://example.com/help/offices",
                                 "Это помогло?"]
    assert texts(replies[2]) == ["Могу ли я помочь чем-то ещё?"]
    resolve = only(replies[3], Resolve)
    assert state.status == "resolved" and "the answer «Офисы» helped" in resolve.summary


def test_offices_without_a_knowledge_base_fall_back_to_a_message(flow: Flow) -> None:
    state, replies = talk(flow, [("", "offices")], Env(language="en", now=OPEN))
    assert texts(replies[1])[0].startswith("Our office addresses") and state.node == "anything_else"


def test_silence_ends_the_bot_conversation_politely(flow: Flow) -> None:
    state, _ = talk(flow, [])
    state, actions = step(flow, state, Timeout())
    assert texts(actions) == ["Если понадобится помощь, просто напишите."] and state.status == "resolved"


def test_vip_goes_to_the_personal_manager_and_at_night_the_customer_is_told_the_hours(flow: Flow) -> None:
    _, replies = talk(flow, ["5"], Env(contact={"vip": True}, now=OPEN))
    assert only(replies[1], Handoff).personal_manager is True
    _, replies = talk(flow, ["5"], Env(now=NIGHT, language="en"))
    assert texts(replies[1])[0].startswith("Our agents work 9:00 to 21:00")
    assert only(replies[1], Handoff).queue == "support"


def test_a_wrong_order_number_is_asked_again_then_the_customer_is_offered_choices(flow: Flow) -> None:
    state, replies = talk(flow, ["2", "не помню", "забыл"], Env(now=OPEN))
    assert texts(replies[2]) == ["Не вижу номера заказа. Напишите его цифрами, например 12345."]
    assert state.node == "ask_order" and state.status == "waiting"
    state, actions = step(flow, state, CustomerMessage("не знаю"), Env(now=OPEN))
    assert state.node == "order_not_found" and texts(actions) == ["Не получилось найти этот заказ. Что сделаем?"]


def test_state_survives_a_json_round_trip(flow: Flow) -> None:
    state, _ = talk(flow, ["2", "A-12345"])
    again = State.from_dict(json.loads(json.dumps(state.to_dict())))
    assert again == state and again.vars == {"order_number": "A-12345"}


# --- asking for a person, not being understood --------------------------------------------------------------

@pytest.mark.parametrize("words", ["оператор", "позовите человека", "I want to talk to an agent"])
def test_asking_for_a_person_mid_flow_hands_off_with_what_the_bot_collected(flow: Flow, words: str) -> None:
    state, replies = talk(flow, ["2", words], Env(now=OPEN))
    handoff = only(replies[-1], Handoff)
    assert state.status == "handoff" and handoff.queue == "support"
    assert handoff.reason == "the customer asked for an agent"
    assert "Chose: Статус заказа." in handoff.summary and handoff.asked == ()  # "an agent!" is no request


def test_the_summary_carries_the_order_number_when_the_customer_gives_up_after_the_lookup(flow: Flow) -> None:
    state, replies = talk(flow, ["2", "мой заказ 12345"])
    assert isinstance(replies[-1][0], CallHttp) and state.status == "http"
    state, actions = step(flow, state, HttpResult(node="lookup_order", status=404, body={"error": "not found"}))
    state, actions = step(flow, state, CustomerMessage("оператор"), Env(now=OPEN))
    handoff = only(actions, Handoff)
    assert handoff.vars["order_number"] == "12345" and "order_number = 12345" in handoff.summary
    assert "Also: request failed (HTTP 404)." in handoff.summary and "lookup_order" not in handoff.summary


def test_ten_nonsense_messages_end_in_one_handoff_not_a_loop(flow: Flow) -> None:
    _state, replies = talk(flow, ["ыва ыва"] * 10, Env(language="en", now=OPEN))
    assert texts(replies[1])[0].startswith("Sorry, I did not understand")
    handoffs = [a for r in replies for a in r if isinstance(a, Handoff)]
    assert len(handoffs) == 1 and "did not understand the customer 2 times in a row" in handoffs[0].reason
    assert all(r == [] for r in replies[3:]), "nothing more is said after the hand-off"


def test_nonsense_at_a_question_uses_its_retries_then_the_menu_hands_off(flow: Flow) -> None:
    state, replies = talk(flow, ["2", "?", "?", "?", "?"], Env(now=OPEN))
    assert state.status == "handoff"
    assert [i for i, r in enumerate(replies) if any(isinstance(a, Handoff) for a in r)] == [5]


_text = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["1", "2", "3", "4", "5", "да", "нет", "yes", "no", "12345", "+7 916 123-45-67",
                     "a@b.ru", "статус заказа", "adress", "", "   ", "оператор", "asdf"]),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(inputs=st.lists(st.tuples(_text, st.sampled_from([None, "yes", "no", "agent", "offices", "retry", "x"])),
                       max_size=25),
       http_ok=st.booleans(), language=st.sampled_from(["ru", "en", None]))
def test_any_sequence_of_messages_ends_with_people_resolved_or_waiting(
        flow: Flow, inputs: list[tuple[str, str | None]], http_ok: bool, language: str | None) -> None:
    env = Env(language=language, now=OPEN, search=lambda q, lang: [KbHit("t", "x")])
    state, _ = step(flow, State(), Start(), env)
    for text, button in inputs:
        state, actions = step(flow, state, CustomerMessage(text, button), env)
        assert all(isinstance(a, SendText | CallHttp | SetAttribute | Handoff | Resolve) for a in actions)
        if state.status == "http":
            result = HttpResult(node="lookup_order", status=200 if http_ok else 500, body={"status": "shipped"})
            state, _actions = step(flow, state, result, env)
        assert state.misunderstood <= flow.max_misunderstandings + 6
        if state.status == "waiting":
            assert state.node is not None and type(flow.nodes[state.node]).waits
        else:
            assert state.status in ("handoff", "resolved")


# --- CRM lookups over real HTTP -----------------------------------------------------------------------------

class _Crm(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        number = self.path.split("?")[0].rsplit("/", 1)[-1]  # the default flow adds ?lang=
        if number == "77777":
            time.sleep(1.5)  # slower than the flow waits
        if number in ("12345", "77777"):
            body, code = {"number": number, "status": "передан в доставку"}, 200
        else:
            body, code = {"error": "no such order"}, 404
        data = json.dumps(body, ensure_ascii=False).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        try:
            self.wfile.write(data)
        except OSError:
            pass  # the bot gave up waiting

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def crm() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Crm)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/crm"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def quick_flow() -> Flow:
    defn = load_default()
    defn["nodes"]["lookup_order"]["timeout"] = 0.3
    return Flow.parse(defn)


async def _ask_status(flow: Flow, crm: str, number: str) -> tuple[State, list[Any]]:
    env = Env(settings={"crm_url": crm}, now=OPEN)
    state = State()
    async with GuardedClient(OutboundGuard(["127.0.0.1"])) as client:  # the fake CRM is on loopback
        for event in (Start(), CustomerMessage("", "order_status")):
            state, _ = await run(flow, state, event, env, client=client)
        return await run(flow, state, CustomerMessage(f"Заказ №{number}"), env, client=client)


async def test_a_bot_call_without_a_client_of_its_own_is_still_guarded(crm):
    state, _actions = await _ask_status_unguarded(Flow.parse(load_default()), crm)
    assert state.node == "order_not_found" and state.vars["http_error"].startswith("refused"), state.vars


async def _ask_status_unguarded(flow: Flow, crm: str) -> tuple[State, list[Any]]:
    env = Env(settings={"crm_url": crm}, now=OPEN)
    state = State()
    for event in (Start(), CustomerMessage("", "order_status")):
        state, _ = await run(flow, state, event, env)
    return await run(flow, state, CustomerMessage("Заказ №12345"), env)


async def test_order_status_found_in_the_crm(quick_flow: Flow, crm: str) -> None:
    state, actions = await _ask_status(quick_flow, crm, "12345")
    assert texts(actions) == ["Заказ 12345: передан в доставку.", "Могу ли я помочь чем-то ещё?"]
    assert state.vars["order_status"] == "передан в доставку" and state.node == "anything_else"


async def test_an_unknown_order_takes_the_failure_branch(quick_flow: Flow, crm: str) -> None:
    state, actions = await _ask_status(quick_flow, crm, "404040")
    assert texts(actions) == ["Не получилось найти этот заказ. Что сделаем?"]
    assert state.vars["http_status"] == 404 and state.node == "order_not_found"


async def test_a_crm_slower_than_the_timeout_takes_the_failure_branch(quick_flow: Flow, crm: str) -> None:
    started = time.monotonic()
    state, _actions = await _ask_status(quick_flow, crm, "77777")
    assert time.monotonic() - started < 1.2, "the bot must not wait for the CRM longer than the node's timeout"
    assert state.node == "order_not_found" and state.vars["http_error"] == "no answer within 0.3 s"


async def test_a_crm_that_is_down_takes_the_failure_branch(quick_flow: Flow) -> None:
    state, _actions = await _ask_status(quick_flow, "http://127.0.0.1:9", "12345")
    assert state.node == "order_not_found" and state.vars["http_error"].startswith("request failed")


def test_the_order_number_cannot_change_the_crm_path(flow: Flow) -> None:
    state, _ = talk(flow, ["2"])
    state.node, state.status = "ask_order", "waiting"
    state, actions = step(flow, state, CustomerMessage("12345"), Env(settings={"crm_url": "http://crm/x"}))
    assert only(actions, CallHttp).url == "http://crm/x/orders/12345?lang=ru"
    state = State(node="lookup_order", status="waiting", language="ru", vars={"order_number": "1/../../admin"})
    node = flow.nodes["lookup_order"]
    from kommutator.bot.nodes.base import Ctx  # the node alone, with a hostile value already in vars
    ctx = Ctx("lookup_order", state, Env(), "ru", {"crm_url": "http://crm"}, flow.texts)
    assert node.enter(ctx).actions == [CallHttp(node="lookup_order", method="GET",
                                                url="http://crm/orders/1%2F..%2F..%2Fadmin?lang=ru",
                                                headers={"Accept": "application/json"}, timeout=5.0)]


# --- the engine's own rules, on small flows ------------------------------------------------------------------

def _tiny(**extra: Any) -> Flow:
    t = {"en": "x"}
    defn: dict[str, Any] = {
        "name": "tiny", "version": 1, "language_default": "en", "start": "menu",
        "nodes": {
            "menu": {"type": "menu", "text": {"en": "Pick"}, "options": [
                {"id": "ask", "label": {"en": "Email"}, "next": "email"},
                {"id": "spin", "label": {"en": "Spin"}, "next": "a"}]},
            "email": {"type": "question", "prompt": {"en": "Your email?"}, "validate": "email", "var": "email",
                      "retries": 1, "next": "route"},
            "route": {"type": "condition", "branches": [
                {"when": [{"var": "email", "op": "matches", "value": "@corp\\."},
                          {"channel": ["telegram"]}], "next": "tag"}], "else": "done"},
            "tag": {"type": "set_attribute", "attributes": {"email": "{email}"}, "next": "done"},
            "done": {"type": "resolve", "text": {"en": "Bye {email}"}},
            "a": {"type": "message", "text": t, "next": "b"},
            "b": {"type": "message", "text": t, "next": "a"},
        }, **extra}
    return Flow.parse(defn)


def test_a_flow_that_loops_without_asking_hands_off() -> None:
    state, replies = talk(_tiny(), [("", "spin")])
    handoff = only(replies[1], Handoff)
    assert state.status == "handoff" and "moved 50 times without asking" in handoff.reason


def test_without_an_escalate_node_a_request_for_a_person_hands_off_directly() -> None:
    state, replies = talk(_tiny(), ["human please"])
    assert texts(replies[1]) == ["I am connecting you to an agent; they will see our conversation."]
    assert only(replies[1], Handoff).queue is None and state.status == "handoff"


def test_the_misunderstanding_limit_is_the_flows() -> None:
    _state, replies = talk(_tiny(max_misunderstandings=3), ["zzz", "qqq", "xxx"])
    assert [any(isinstance(a, Handoff) for a in r) for r in replies] == [False, False, False, True]


def test_a_question_without_on_fail_hands_off_after_its_retries() -> None:
    _state, replies = talk(_tiny(max_misunderstandings=5), ["1", "nope", "still no"])
    assert texts(replies[2]) == ["That does not look like an email address. Please write it like name@example.com."]
    assert "was not a valid email" in only(replies[3], Handoff).reason


def test_conditions_read_vars_and_the_channel_and_attributes_are_set() -> None:
    flow = _tiny()
    _, replies = talk(flow, ["1", "it is Ann@Corp.example"], Env(channel_type="telegram"))
    assert replies[2] == [SetAttribute("email", "ann@corp.example"), SendText("Bye ann@corp.example"),
                          Resolve(reason="served by the bot", summary="menu: chose «Email»; resolved by the bot "
                                                                      "(served by the bot)")]
    _, replies = talk(flow, ["1", "ann@corp.example"], Env(channel_type="vk"))
    assert not any(isinstance(a, SetAttribute) for a in replies[2])


def test_a_first_message_asking_for_a_person_is_greeted_and_handed_off_at_once(flow: Flow) -> None:
    state, actions = step(flow, State(), CustomerMessage("Позовите оператора"), Env(now=OPEN))
    assert state.language == "ru" and state.status == "handoff"
    assert texts(actions)[0].startswith("Здравствуйте") and only(actions, Handoff).queue == "support"
    assert step(flow, State(), Timeout()) == (State(), []), "a timer for a conversation the bot never started"


def test_verify_identity_keeps_only_the_hash_and_never_shows_it() -> None:
    flow = Flow.parse({"name": "v", "version": 1, "language_default": "en", "languages": ["en", "ru"],
                       "start": "verify", "nodes": {
                           "verify": {"type": "verify_identity", "accept": "email", "next": "done"},
                           "done": {"type": "handoff"}}})
    state, actions = step(flow, State(), Start())
    assert actions[0].text == "Write your email address and I will send a confirmation code to it."  # type: ignore[union-attr]
    state, actions = step(flow, state, CustomerMessage(text="+7 912 345 67 89"))
    assert actions[0].text.startswith("I cannot see an email address")  # type: ignore[union-attr]
    state, actions = step(flow, state, CustomerMessage(text="Me: Anna@Example.com"))
    [send, said] = actions
    assert isinstance(send, SendCode) and send.value == "anna@example.com" and send.kind == "email"
    assert said.text == "I sent a code to a…@example.com. Please type it here (6 digits)."  # type: ignore[union-attr]
    assert code_matches(send.code, send.code_hash) and send.code not in str(state.to_dict())
    wrong = "000000" if send.code != "000000" else "111111"
    after_wrong, actions = step(flow, state, CustomerMessage(text=wrong))
    assert isinstance(actions[0], CodeTyped) and not actions[0].matches
    assert state.vars["_verify"]["attempts"] == 0, "the step leaves its input state alone"
    done, actions = step(flow, after_wrong, CustomerMessage(text=f"{send.code[:3]}-{send.code[3:]}"))
    assert isinstance(actions[0], CodeTyped) and actions[0].matches
    assert done.vars["verified_value"] == "anna@example.com" and "_verify" not in done.vars
    handoff = next(a for a in actions if isinstance(a, Handoff))
    assert "_verify" not in handoff.summary and send.code_hash not in handoff.summary

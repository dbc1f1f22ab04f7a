"""The bot runner: ``step(flow, state, event) -> (state, actions)``, pure; ``run`` also makes the HTTP calls.

Rules the engine applies whatever the flow says, so no flow can trap a customer:
* a request for a person ("оператор", "agent", "живой человек") at any point goes to the flow's ``escalate``
  node, or straight to a hand-off;
* input not understood ``max_misunderstandings`` times in a row hands off instead of asking again
  (a question's own ``retries`` come first; a hard limit stops even those);
* more than ``MAX_HOPS`` moves without waiting for the customer (a loop in the flow) hands off.
Every hand-off carries a summary of what the bot collected.
"""

from __future__ import annotations

import httpx

from kommutator.bot import http
from kommutator.bot.flow import Flow, FlowError, Problem, load_default, validate_flow
from kommutator.bot.nlu import wants_human
from kommutator.bot.nodes.base import (
    FINISHED,
    Action,
    CallHttp,
    CodeTyped,
    Ctx,
    CustomerMessage,
    Env,
    Event,
    Handoff,
    HttpResult,
    KbHit,
    Outcome,
    Resolve,
    SendCode,
    SendText,
    SetAttribute,
    Start,
    State,
    Timeout,
    handoff,
    pick,
)
from kommutator.bot.nodes.menu import MenuNode
from kommutator.common.text import script_of

__all__ = [
    "Action", "CallHttp", "CodeTyped", "CustomerMessage", "Env", "Event", "Flow", "FlowError", "Handoff",
    "HttpResult", "KbHit", "Problem", "Resolve", "SendCode", "SendText", "SetAttribute", "Start", "State", "Timeout",
    "load_default", "run", "step", "validate_flow",
]

MAX_HOPS = 50  # moves between nodes within one step; more means the flow loops without asking anything
HARD_EXTRA = 6  # a question's own retries may exceed the flow's limit by at most this much in a row
MAX_HTTP_CALLS = 10  # HTTP calls one customer event may cause in ``run``
ASKED_KEPT, ASKED_CHARS = 3, 300  # the customer's own words kept for the hand-off summary


def step(flow: Flow, state: State, event: Event, env: Env | None = None) -> tuple[State, list[Action]]:
    """Return the new state and the actions to take for ``event``; ``state`` is not modified."""
    env = env or Env()
    state = state.copy()
    if state.status in FINISHED and not isinstance(event, Start):
        return state, []
    actions: list[Action] = []
    if state.status == "new" and isinstance(event, Timeout | HttpResult):
        return state, []
    if isinstance(event, Start | CustomerMessage) and (isinstance(event, Start) or state.status == "new"):
        text = event.text if isinstance(event, CustomerMessage) else ""
        state = State(language=_language(flow, env, text))
        if isinstance(event, CustomerMessage):
            state.last_text = event.text[:1000]
            _remember_asked(state, event)
        state.node = flow.start
        _run(flow, state, env, _enter(flow, state, env, flow.start), actions)
        if isinstance(event, CustomerMessage) and state.status not in FINISHED and _asks_human(state, event):
            _escalate(flow, state, env, "the customer asked for an agent", actions)
        elif isinstance(event, CustomerMessage) and event.text.strip():
            _first_message(flow, state, env, event, actions)
        return state, actions
    if isinstance(event, Timeout):
        if state.status != "waiting":
            return state, []
        _ctx(flow, state, env).note("the customer stopped answering")
        if flow.on_timeout:
            state.node = flow.on_timeout
            _run(flow, state, env, _enter(flow, state, env, flow.on_timeout), actions)
        else:
            state.status = "resolved"
            actions.append(Resolve(reason="timeout", summary="; ".join(state.trail)))
        return state, actions
    if isinstance(event, HttpResult):
        if state.status != "http" or state.node != event.node:
            return state, []  # a late or repeated answer
        _receive(flow, state, env, event, actions)
        return state, actions
    state.last_text = event.text[:1000]
    _remember_asked(state, event)
    if _asks_human(state, event):
        _escalate(flow, state, env, "the customer asked for an agent", actions)
    elif state.status == "waiting":
        _receive(flow, state, env, event, actions)
    return state, actions  # while an HTTP call is out, the customer's words wait for its answer


async def run(flow: Flow, state: State, event: Event, env: Env | None = None, *,
              client: httpx.AsyncClient | None = None,
              record: list[tuple[CallHttp, HttpResult]] | None = None) -> tuple[State, list[Action]]:
    """Step, make the HTTP calls the flow asks for and step on their results; return the other actions.
    ``record`` receives each call with its result (for the conversation's trail)."""
    state, pending = step(flow, state, event, env)
    out: list[Action] = []
    calls = 0
    while pending:
        action = pending.pop(0)
        if not isinstance(action, CallHttp):
            out.append(action)
            continue
        calls += 1
        result = (await http.execute(action, client=client) if calls <= MAX_HTTP_CALLS
                  else HttpResult(node=action.node, error="too many HTTP calls for one message"))
        if record is not None:
            record.append((action, result))
        state, more = step(flow, state, result, env)
        pending = more + pending
    return state, out


def _first_message(flow: Flow, state: State, env: Env, event: CustomerMessage, actions: list[Action]) -> None:
    """A customer who opens with what they want ("где мой заказ 12345") skips the menu the flow would show:
    when the flow waits at a menu and the message chooses one of its options, the menu is not sent and the
    flow goes on from the option (a question there may take its answer from the same message)."""
    node = flow.nodes.get(state.node or "")
    if state.status != "waiting" or not isinstance(node, MenuNode):
        return
    ctx = _ctx(flow, state, env)
    option = node.choose(ctx, event)
    if option is None:
        return
    menu_text = next((i for i in range(len(actions) - 1, -1, -1)
                      if isinstance(actions[i], SendText) and actions[i].buttons), None)  # type: ignore[union-attr]
    if menu_text is not None:
        del actions[menu_text]
    ctx.note(f"{state.node}: the first message chose \u00ab{pick(option.label, state.language, flow.language_default)}"
             "\u00bb")
    state.carry = event.text[:1000]
    _run(flow, state, env, Outcome(goto=option.next), actions)
    state.carry = ""


def _remember_asked(state: State, event: CustomerMessage) -> None:
    """Keep the customer's own words (not a button's) for the hand-off summary: the first few, shortened."""
    words = event.text.strip()
    letters = sum(ch.isalpha() for ch in words)  # "1" or "ok" answer a menu; they are not the request
    if event.button is None and letters >= 3 and len(state.asked) < ASKED_KEPT and not _asks_human(state, event):
        state.asked.append(words[:ASKED_CHARS])


def _language(flow: Flow, env: Env, text: str) -> str:
    if env.language in flow.languages:
        return env.language
    script = script_of(text) if text else None
    return script if script in flow.languages else flow.language_default


def _asks_human(state: State, event: CustomerMessage) -> bool:
    return bool(event.text.strip()) and wants_human(event.text, "ru" if state.language == "ru" else "en")


def _ctx(flow: Flow, state: State, env: Env, node_id: str | None = None) -> Ctx:
    settings = {**flow.settings, **env.settings}
    return Ctx(node_id=node_id or state.node or "", state=state, env=env, language_default=flow.language_default,
               settings=settings, builtin_texts=flow.texts)


def _enter(flow: Flow, state: State, env: Env, node_id: str) -> Outcome:
    state.node, state.retries = node_id, 0
    return flow.nodes[node_id].enter(_ctx(flow, state, env, node_id))


def _receive(flow: Flow, state: State, env: Env, event: CustomerMessage | HttpResult, actions: list[Action]) -> None:
    assert state.node is not None
    outcome = flow.nodes[state.node].receive(_ctx(flow, state, env), event)
    if isinstance(event, CustomerMessage):
        if outcome.understood:
            state.misunderstood = 0
        else:
            state.misunderstood += 1
            limit = flow.max_misunderstandings
            looping = outcome.wait and not outcome.retrying and state.misunderstood >= limit
            if looping or state.misunderstood >= limit + HARD_EXTRA:
                _escalate(flow, state, env, f"the bot did not understand the customer {state.misunderstood} times "
                                            "in a row", actions)
                return
    _run(flow, state, env, outcome, actions)


def _run(flow: Flow, state: State, env: Env, outcome: Outcome, actions: list[Action]) -> None:
    """Apply ``outcome`` and follow ``goto`` until a node waits or the flow ends."""
    for _ in range(MAX_HOPS):
        actions.extend(outcome.actions)
        if outcome.finish:
            state.status = outcome.finish
            return
        if outcome.wait:
            state.status = "http" if any(isinstance(a, CallHttp) for a in outcome.actions) else "waiting"
            return
        if outcome.goto is None:
            state.status = "resolved"
            actions.append(Resolve(reason="the flow ended", summary="; ".join(state.trail)))
            return
        outcome = _enter(flow, state, env, outcome.goto)
    _handoff_now(flow, state, env, f"the flow moved {MAX_HOPS} times without asking the customer", actions)


def _escalate(flow: Flow, state: State, env: Env, reason: str, actions: list[Action]) -> None:
    """Hand off through the flow's ``escalate`` node (its queue and texts), else directly."""
    state.escalation = reason
    if flow.escalate:
        before = len(actions)
        _run(flow, state, env, _enter(flow, state, env, flow.escalate), actions)
        if state.status in FINISHED or any(isinstance(a, Handoff) for a in actions[before:]):
            return
        del actions[before:]  # the escalate node did not end with people: do not leave the customer waiting
    _handoff_now(flow, state, env, reason, actions)


def _handoff_now(flow: Flow, state: State, env: Env, reason: str, actions: list[Action]) -> None:
    ctx = _ctx(flow, state, env)
    actions.append(SendText(ctx.builtin("handoff")))
    actions.append(handoff(ctx, reason))
    state.status = "handoff"

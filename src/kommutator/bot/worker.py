"""The bot worker: serves conversations whose bot session is due (a customer message or a timeout).

For each due session it claims a lease, computes the step **outside** any write transaction (``engine.run``
makes the flow's HTTP calls through the guarded client; knowledge-base searches read through a read session),
then applies the result in one transaction (bot/apply.py). The apply checks that the session's
``last_input_id`` is still the one the step was computed from, so a crash anywhere — before the commit, after
it, or while the lease is held — neither loses nor repeats a customer's message: a lease that is not released
expires and the next pass computes the step again.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.engine import Connection

from kommutator.bot import engine
from kommutator.bot import step_sql as sql
from kommutator.bot.apply import DEFAULT_TIMEOUT, Step, arm_timeout, do_apply_step, do_stop, stop
from kommutator.bot.engine import CustomerMessage, Env, Flow, FlowError, Handoff, KbHit, SendText, State, Timeout
from kommutator.bot.intent_training import intents_of
from kommutator.bot.models import BotSession
from kommutator.clock import now
from kommutator.conversations.locks import do_lock_conversation, lock_conversation
from kommutator.conversations.models import Conversation
from kommutator.db import Tx
from kommutator.events import ConversationCreated, ConversationUpdated, Event, MessageCreated
from kommutator.knowledge import text as kb_text
from kommutator.knowledge.models import Article
from kommutator.knowledge.search import search_articles
from kommutator.net.http import outbound_client
from kommutator.runtime import Runtime
from kommutator.workers.base import PollingWorker, wait_for_wake
from kommutator.workers.models import Timer
from kommutator.workers.owners import owners_of

log = logging.getLogger(__name__)

LEASE = dt.timedelta(seconds=90)  # longer than the flow's HTTP calls may take (10 × 30 s at the very worst is
MAX_INPUTS = 20  # capped by engine.MAX_HTTP_CALLS per event; a lease outliving a crash is retried after it)
KB_ANSWER_CHARS = 700


@dataclass
class _Work:
    conversation_id: int
    last_input_id: int
    state: dict[str, Any]
    flow: Flow | None
    event: CustomerMessage | Timeout
    input_id: int | None
    env: Env


async def do_bot_timeout(tx: Tx, timer: Timer) -> None:
    """The customer did not answer in time: mark the session due; the worker runs the flow's ``on_timeout``."""
    session = await tx.session.get(BotSession, timer.subject_id)
    if session is None or session.status != "active":
        return
    if timer.due_at > now():  # the customer wrote after the timer was picked and the step moved it later
        await arm_timeout(tx, timer.subject_id, timer.due_at)
        return
    session.timeout_due, session.due_at = True, now()


def _excerpt(body: str) -> str:
    """The start of an article, cut at a paragraph or sentence, for a chat message."""
    if len(body) <= KB_ANSWER_CHARS:
        return body.strip()
    cut = body[:KB_ANSWER_CHARS]
    for mark in ("\n\n", ". ", "\n"):
        at = cut.rfind(mark)
        if at > KB_ANSWER_CHARS // 3:
            return cut[:at + 1].strip() + " …"
    return cut.strip() + " …"


# The lease names its process (workers/owners.py): released at once when that process dies or stops.
_CLAIM = sql.CLAIM.values(claimed_by=bindparam("owner"))


def _claim(conn: Connection, conversation_id: int, ts: dt.datetime, owner: str | None) -> bool:
    return conn.execute(_CLAIM, {"cid": conversation_id, "ts": ts, "until": ts + LEASE, "owner": owner}
                        ).first() is not None


class BotWorker(PollingWorker):
    """Serve due bot sessions; ``run_due`` is one pass (tests call it), ``start`` runs passes in the background,
    woken at once by new customer messages."""

    name_in_logs = "bot"

    def __init__(self, rt: Runtime, *, interval: float = 1.0, batch: int = 50,
                 client: httpx.AsyncClient | None = None) -> None:
        super().__init__()
        self.rt = rt
        self.interval = interval
        self.batch = batch
        self._client = client
        self._wake = asyncio.Event()
        self._flows: dict[tuple[int, int], Flow] = {}  # versions never change once saved
        self._left: set[int] = set()  # conversations people took from the bot: end their sessions
        self.owner = owners_of(rt).id
        rt.bus.subscribe(self._on_event, kinds=(ConversationCreated, ConversationUpdated, MessageCreated))

    async def _on_event(self, event: Event) -> None:
        if isinstance(event, ConversationUpdated):
            # Only bookkeeping depends on this (the session's outcome): the bot checks the status before every
            # step anyway, so a lost event cannot make it talk over an agent.
            if event.status != "bot" and not (event.changes.get("resolved_by") == "bot"
                                              or event.changes.get("handed_off_by") == "bot"):
                self._left.add(event.conversation_id)
                self._wake.set()
            return
        if (isinstance(event, ConversationCreated) and event.status == "bot") or (
                isinstance(event, MessageCreated) and event.direction == "in"):
            self._wake.set()

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_due()
            except Exception:
                log.exception("bot pass failed")
            await wait_for_wake(self._wake, self.interval)
            self._wake.clear()

    def client(self) -> httpx.AsyncClient:
        """The guarded client (refuses private addresses unless allowed in outbound_allow_hosts)."""
        if self._client is None or self._client.is_closed:
            self._client = outbound_client(self.rt.settings, timeout=30.0)
        return self._client

    async def stop(self) -> None:
        await super().stop()
        if self._client is not None:
            await self._client.aclose()

    async def run_due(self) -> int:
        if self._left:
            left, self._left = list(self._left), set()
            async with self.rt.db.read() as s:
                active = list((await s.execute(select(BotSession.conversation_id).where(
                    BotSession.conversation_id.in_(left), BotSession.status == "active"))).scalars())
            for conversation_id in active:
                await self.rt.db.write(lambda tx, c=conversation_id: self._stop(tx, c))  # type: ignore[misc]
        ts = now()
        async with self.rt.db.read() as s:
            ids = list((await s.execute(
                select(BotSession.conversation_id)
                .where(BotSession.due_at <= ts, BotSession.status == "active",
                       or_(BotSession.claimed_until.is_(None), BotSession.claimed_until <= ts))
                .order_by(BotSession.due_at).limit(self.batch))).scalars())
        served = 0
        for conversation_id in ids:
            try:
                served += await self.serve(conversation_id)
            except Exception:
                log.exception("bot step for conversation %s failed; retried when its lease expires", conversation_id)
        return served

    async def serve(self, conversation_id: int) -> int:
        """Claim the session and apply its waiting inputs one by one; the number applied."""
        applied = 0
        work = await self.rt.db.write(lambda tx: self._take(tx, conversation_id, claim=True))
        for _ in range(MAX_INPUTS):
            if work is None:
                return applied
            step = await self.compute(work)
            more = await self.rt.db.write(lambda tx, step=step: do_apply_step(tx, step))  # type: ignore[misc]
            applied += 1
            if not more:
                return applied
            work = await self._load(conversation_id)
        await self.rt.db.write(lambda tx: self._release(tx, conversation_id))
        return applied

    async def _claim(self, tx: Tx, conversation_id: int) -> bool:
        """Take the session's lease (False: not due, or another worker holds it)."""
        return bool(await tx.conn.run_sync(lambda c: _claim(c, conversation_id, now(), self.owner)))

    async def _release(self, tx: Tx, conversation_id: int) -> None:
        await tx.session.execute(update(BotSession).where(BotSession.conversation_id == conversation_id)
                                 .values(claimed_until=None))

    async def _load(self, conversation_id: int) -> _Work | None:
        """The next input of a session this worker holds (None: nothing more to do)."""
        return await self.rt.db.write(lambda tx: self._take(tx, conversation_id, claim=False))

    async def _take(self, tx: Tx, conversation_id: int, *, claim: bool) -> _Work | None:
        """Claim (if asked) and read what the next step needs, in one short job on the writer: prebuilt statements
        in one ``run_sync`` (bot/step_sql.py), cheaper than the read pool's thread hops; nothing slow happens here."""
        settings = dict(self.rt.bot_settings)
        return await tx.conn.run_sync(lambda c: self._take_sync(c, conversation_id, claim, settings))

    def _take_sync(self, conn: Connection, conversation_id: int, claim: bool, settings: dict[str, Any]) -> _Work | None:
        ts = now()
        lock_conversation(conn, conversation_id)  # before the session: the one lock order (PostgreSQL)
        if claim and not _claim(conn, conversation_id, ts, self.owner):
            return None
        got = conn.execute(sql.TAKE, {"cid": conversation_id}).first()
        if got is None or got.status != "active":
            return None
        if got.conv_status != "bot":
            stop(conn, conversation_id, "taken_over", ts)
            return None
        row = conn.execute(sql.NEXT_INPUT, {"cid": conversation_id, "after": got.last_input_id}).first()
        event: CustomerMessage | Timeout
        if row is not None:
            button = (row.payload or {}).get("button")
            event = CustomerMessage(text=row.text or "", button=str(button) if button is not None else None)
        elif got.timeout_due:
            event = Timeout()
        else:  # e.g. a timeout that lost to a message: nothing waits any more
            conn.execute(sql.NOTHING_DUE, {"cid": conversation_id})
            return None
        known: dict[str, Any] = dict(got.attributes or {}) if got.contact_id is not None else {}
        known.update({k: v for k, v in (("name", got.name), ("email", got.email), ("phone", got.phone)) if v})
        env = Env(contact=known, channel_type=got.channel_type or "", language=got.language, now=ts,
                  settings=settings)
        return _Work(conversation_id=conversation_id, last_input_id=int(got.last_input_id),
                     state=dict(got.state or {}), flow=self._flow(conn, got.flow_id, got.flow_version), event=event,
                     input_id=row.id if row is not None else None, env=env)

    async def _stop(self, tx: Tx, conversation_id: int) -> None:
        await do_lock_conversation(tx, conversation_id)
        session = await tx.session.get(BotSession, conversation_id, with_for_update=True)
        conv = await tx.session.get(Conversation, conversation_id)
        if session is not None and session.status == "active" and conv is not None and conv.status != "bot":
            await do_stop(tx, session, "taken_over")

    def _flow(self, conn: Connection, flow_id: int | None, version: int) -> Flow | None:
        if flow_id is None:
            return None
        key = (flow_id, version)
        if key not in self._flows:
            defn = conn.execute(sql.FLOW_DEFINITION, {"flow_id_": flow_id, "version_": version}).scalar()
            if defn is None:
                return None
            try:
                self._flows[key] = Flow.parse(defn)
            except FlowError:
                log.exception("stored flow %s version %s does not parse", *key)
                return None
        return self._flows[key]

    async def compute(self, work: _Work) -> Step:
        """Run the flow for the work's event, outside any transaction; searches the knowledge base as needed."""
        state = State.from_dict(work.state)
        if work.flow is None:  # the flow was deleted or broke: people take over
            reason = "the bot's flow is no longer available"
            summary = "Bot conversation; handed off: " + reason + "."
            return Step(conversation_id=work.conversation_id, expected_input_id=work.last_input_id,
                        input_id=work.input_id, state=state,
                        actions=[Handoff(reason=reason, summary=summary, vars=dict(state.vars))])
        flow = work.flow
        cache: dict[tuple[str, str], list[KbHit]] = {}
        misses: list[tuple[str, str]] = []

        def search(query: str, language: str) -> list[KbHit]:
            if (query, language) not in cache:
                misses.append((query, language))
                return []
            return cache[(query, language)]

        env = Env(contact=work.env.contact, channel_type=work.env.channel_type, language=work.env.language,
                  now=work.env.now, settings=work.env.settings, search=search, intents=intents_of(self.rt).get)
        # Nodes search synchronously; a query not seen yet is looked up and the step recomputed (it is pure
        # but for HTTP calls, which a knowledge-base answer rarely follows).
        for _ in range(3):
            misses.clear()
            record: list[tuple[engine.CallHttp, engine.HttpResult]] = []
            new_state, actions = await engine.run(flow, state, work.event, env, client=self.client(), record=record)
            if not misses:
                break
            await self._search(misses, cache)
        article = new_state.vars.get("kb_article", "") if any(
            isinstance(a, SendText) and a.buttons and a.buttons[0][0] == "yes" for a in actions) else ""
        seconds = flow.settings.get("timeout_minutes")
        timeout = dt.timedelta(minutes=float(seconds)) if isinstance(seconds, int | float) else DEFAULT_TIMEOUT
        return Step(conversation_id=work.conversation_id, expected_input_id=work.last_input_id,
                    input_id=work.input_id, state=new_state, actions=actions, http=record,
                    kb_article=str(article), timeout=timeout)

    async def _search(self, queries: list[tuple[str, str]], cache: dict[tuple[str, str], list[KbHit]]) -> None:
        base = self.rt.settings.public_base_url
        async with self.rt.db.read() as s:
            for query, language in queries:
                hits = await search_articles(s, query, language=language, limit=1)
                found: list[KbHit] = []
                wanted = set(kb_text.query_terms(query))
                for hit in hits:
                    body = await s.scalar(select(Article.body).where(Article.id == hit.id)) or hit.snippet
                    # how sure: the share of the question's words the article has (the same on SQLite and
                    # PostgreSQL, whose ranks are not comparable)
                    has = set(kb_text.terms(f"{hit.title} {body}"))
                    score = len(wanted & has) / len(wanted) if wanted else 0.0
                    found.append(KbHit(title=hit.title, text=_excerpt(kb_text.plain(body)), url=f"{base}/help/{hit.id}",
                                       score=round(score, 3)))
                cache[(query, language)] = found


def bot_worker_of(rt: Runtime) -> BotWorker:
    """The process's bot worker (one per runtime: it subscribes to the bus)."""
    if rt.bot_worker is None:
        rt.bot_worker = BotWorker(rt)
    return rt.bot_worker

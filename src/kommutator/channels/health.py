"""Channel health: is each channel ok, degraded or failing, why, and when it last received and sent.

Recorded where the work happens: intake (a received message), the outbox (a send's outcome), the types'
run loops (a poll round, through ``ChannelHost.report``) and the connection test. A problem whose code says
the channel cannot work at all (credentials refused, TLS failing, settings wrong, a server the guard
refuses) makes it failing at once; others (unreachable, provider errors) degrade it, and fail it when they
repeat ``FAIL_AFTER`` times without a success in between. Entering "failing" raises one alert to the
administrators; the next success clears it with one "recovered" notice: one alert per transition.

The hot paths call ``note_*``, which write only when the status this process knows would change, and
otherwise at most once per ``RECORD_EVERY`` per channel and kind: no database write per message.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from typing import cast

from sqlalchemy import Table, select
from sqlalchemy.dialects import postgresql, sqlite

from kommutator.agents.models import User
from kommutator.channels.base import ChannelProblem, SendError, SendResult
from kommutator.channels.models import Channel, ChannelHealth
from kommutator.clock import now
from kommutator.db import Tx
from kommutator.quality.alerts import do_raise_alert
from kommutator.runtime import Runtime

log = logging.getLogger(__name__)

STATUSES = ("ok", "degraded", "failing")
SEVERE = frozenset({"auth", "tls", "config", "refused"})
FAIL_AFTER = 3
RECORD_EVERY = dt.timedelta(seconds=60)

# What each problem code means, for the screen, alerts and docs (the detail says what exactly to fix).
HEADLINES = {
    "en": {"auth": "the provider refused the channel's credentials",
           "tls": "the secure (TLS) connection failed",
           "config": "the channel's settings are incomplete or wrong",
           "refused": "a server in the settings is not allowed by the outbound guard",
           "connect": "the provider cannot be reached",
           "provider": "the provider answers with errors"},
    "ru": {"auth": "провайдер не принял учётные данные канала",
           "tls": "не удалось установить защищённое (TLS) соединение",
           "config": "настройки канала неполны или неверны",
           "refused": "сервер из настроек запрещён защитой исходящих соединений",
           "connect": "провайдер недоступен",
           "provider": "провайдер отвечает ошибками"},
}


def headline(code: str, language: str) -> str:
    texts = HEADLINES["ru" if language == "ru" else "en"]
    return texts.get(code, texts["provider"])


# --- Actions ---------------------------------------------------------------------------------------------

async def _row(tx: Tx, channel_id: int) -> tuple[Channel, ChannelHealth] | None:
    """The channel and its health row (created ok), locked; None when the channel is gone."""
    channel = await tx.session.get(Channel, channel_id)
    if channel is None:
        return None
    table = cast(Table, ChannelHealth.__table__)
    dialect = postgresql if tx.conn.dialect.name == "postgresql" else sqlite
    await tx.conn.execute(dialect.insert(table).values(
        channel_id=channel_id, status="ok", failures=0, error_code="", last_error="", changed_at=now())
        .on_conflict_do_nothing(index_elements=["channel_id"]))
    health = await tx.session.get(ChannelHealth, channel_id, with_for_update=True, populate_existing=True)
    assert health is not None
    return channel, health


async def do_record_success(tx: Tx, *, channel_id: int, kind: str = "") -> str | None:
    """The channel worked (``kind`` "receive" or "send" stamps that time); the status now, None if no channel.

    A received message only stamps ``last_receive_at``: it proves the provider reaches us, not that the problem
    that degraded or failed the channel (a send refused, a poll failing) is gone. Clearing the status on every
    receive made a channel whose sends fail flap failing → ok → failing with every customer message, an alert
    and a recovery notice each time; a send, a poll round or a connection test that works clears it."""
    found = await _row(tx, channel_id)
    if found is None:
        return None
    channel, health = found
    ts = now()
    if kind == "receive":
        health.last_receive_at = ts
        return health.status
    if kind == "send":
        health.last_send_at = ts
    health.failures = 0
    if health.status != "ok":
        was = health.status
        health.status, health.changed_at = "ok", ts
        if was == "failing":
            await _alert(tx, channel, health, recovered=True)
    return health.status


async def do_record_problem(tx: Tx, *, channel_id: int, problem: ChannelProblem) -> str | None:
    """The channel failed for ``problem``; the status now (failing never drops to degraded), None if no channel."""
    found = await _row(tx, channel_id)
    if found is None:
        return None
    channel, health = found
    ts = now()
    health.failures += 1
    health.error_code, health.last_error, health.last_error_at = problem.code, problem.detail[:2000], ts
    severe = problem.code in SEVERE or health.failures >= FAIL_AFTER
    status = "failing" if severe or health.status == "failing" else "degraded"
    if status != health.status:
        health.status, health.changed_at = status, ts
        if status == "failing":
            await _alert(tx, channel, health, recovered=False)
    log.warning("channel %s (%s) %s: %s", channel.id, channel.name, health.status, problem.detail)
    return health.status


async def _alert(tx: Tx, channel: Channel, health: ChannelHealth, *, recovered: bool) -> None:
    admins = list((await tx.session.execute(
        select(User.id).where(User.role == "admin", User.active.is_(True)).order_by(User.id))).scalars())
    detail = ""
    if recovered:
        en, ru = f"Channel “{channel.name}” works again", f"Канал «{channel.name}» снова работает"
        body = f"{en}\n{ru}"
    else:
        en = f"Channel “{channel.name}” is failing: {headline(health.error_code, 'en')}"
        ru = f"Канал «{channel.name}» не работает: {headline(health.error_code, 'ru')}"
        detail = f"\n\n{health.last_error}"
        body = f"{en}\n{ru}{detail}"
    # Each administrator in their own language (one language per notification); the record keeps both.
    titles = {"en": en, "ru": ru}
    await do_raise_alert(tx, kind="channel.recovered" if recovered else "channel.failing", title=en, body=body,
                         render=lambda lang: (titles[lang], titles[lang] + detail),
                         conversation_id=None, team_id=None, agent_id=None, user_ids=admins,
                         data={"channel_id": channel.id, "code": health.error_code},
                         severity="info" if recovered else "critical")


# --- Cheap recording from the hot paths ------------------------------------------------------------------

class HealthBook:
    """What this process last wrote per channel, so that the hot paths write only when something changes."""

    def __init__(self) -> None:
        self.status: dict[int, str] = {}
        self.written: dict[tuple[int, str], dt.datetime] = {}
        # Writes on their way: a burst of messages (say, right after a start) makes one write, not one each.
        self.pending: set[tuple[int, str]] = set()

    def due(self, channel_id: int, kind: str, status: str | None) -> bool:
        """Whether to write: the status would change (``status`` None: the write changes no status), or the
        last write of this kind is older than RECORD_EVERY."""
        if (channel_id, kind) in self.pending:
            return False
        known = self.status.get(channel_id)
        if status is not None and known != status:
            return True
        last = self.written.get((channel_id, kind))
        return last is None or now() - last >= RECORD_EVERY

    def wrote(self, channel_id: int, kind: str, status: str | None) -> None:
        if status is None:
            self.status.pop(channel_id, None)
        else:
            self.status[channel_id] = status
            self.written[(channel_id, kind)] = now()


def book_of(rt: Runtime) -> HealthBook:
    if rt.channel_health is None:
        rt.channel_health = HealthBook()
    return rt.channel_health


async def _write(book: HealthBook, rt: Runtime, channel_id: int, kind: str,
                 job: Callable[[Tx], Awaitable[str | None]]) -> None:
    key = (channel_id, kind)
    book.pending.add(key)
    try:
        status = await rt.db.write(job)
    except Exception:  # never fail the message for its channel's bookkeeping
        log.exception("channel %s: its health could not be recorded", channel_id)
        return
    finally:
        book.pending.discard(key)
    book.wrote(channel_id, kind, status)


async def note_success(rt: Runtime, channel_id: int, kind: str = "") -> None:
    """The channel received (``kind`` "receive"), sent ("send") or simply worked (""); rarely writes."""
    book = book_of(rt)
    if not book.due(channel_id, kind or "ok", "ok") or (not kind and book.status.get(channel_id) == "ok"):
        return
    await _write(book, rt, channel_id, kind or "ok",
                 lambda tx: do_record_success(tx, channel_id=channel_id, kind=kind))


async def note_receive(rt: Runtime, channel_id: int) -> None:
    """After the intake stored a provider's events (ingest's after-accept hook): in memory, a write at most
    once a minute per channel, whatever the channel's status (a receive does not change it)."""
    book = book_of(rt)
    if not book.due(channel_id, "receive", None):
        return
    await _write(book, rt, channel_id, "receive",
                 lambda tx: do_record_success(tx, channel_id=channel_id, kind="receive"))


async def note_problem(rt: Runtime, channel_id: int, problem: ChannelProblem) -> None:
    """The channel failed; written on a change of status, else at most once per RECORD_EVERY."""
    book = book_of(rt)
    known = book.status.get(channel_id)
    expected = "failing" if problem.code in SEVERE or known == "failing" else "degraded"
    if not book.due(channel_id, "problem", expected):
        return
    await _write(book, rt, channel_id, "problem",
                 lambda tx: do_record_problem(tx, channel_id=channel_id, problem=problem))


async def note_report(rt: Runtime, channel_id: int, problem: ChannelProblem | None) -> None:
    """A run loop's round: worked (None) or failed."""
    if problem is None:
        await note_success(rt, channel_id)
    else:
        await note_problem(rt, channel_id, problem)


def problem_of(error: SendError) -> ChannelProblem | None:
    """The channel's problem in a failed send; None when only the message was refused (a blocked bot)."""
    if error.channel_problem:
        return ChannelProblem(error.channel_problem, error.reason)
    if error.endpoint_gone:
        return ChannelProblem("config", error.reason)
    if error.retryable:
        return ChannelProblem("connect", error.reason)
    return None


async def note_send(rt: Runtime, channel_id: int | None, outcome: SendResult | SendError) -> None:
    """The outbox's outcome of one send."""
    if channel_id is None:
        return
    if isinstance(outcome, SendResult):
        await note_success(rt, channel_id, "send")
        return
    problem = problem_of(outcome)
    if problem is not None:
        await note_problem(rt, channel_id, problem)

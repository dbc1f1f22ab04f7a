"""The one owner of a conversation's lifecycle: status, assignee, team, queue, routing hold, snooze.

Every change to those fields is computed here, by pure functions that take what the conversation is now and
return a ``Change``: the column values to write, the timeline row (``conversation_transitions``) that records
it, and the ``ConversationUpdated`` / ``ConversationCreated`` event to publish after commit. Two writers apply
a change, with the same rules: ``apply`` on an ORM transaction (actions, timers, routing, the bot) and
``apply_core`` on a plain connection inside ``run_sync`` (the inbound path's prebuilt statements).

Nothing else assigns a conversation's status or assignee or builds these events (tests/test_architecture.py).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Table, bindparam
from sqlalchemy.engine import Connection

from kommutator.conversations.models import Conversation, Transition
from kommutator.db import Tx
from kommutator.events import ConversationCreated, ConversationUpdated, Event

_conversations = cast(Table, Conversation.__table__)
_INSERT_TRANSITION = cast(Table, Transition.__table__).insert()
_updates: dict[frozenset[str], Any] = {}  # UPDATE statements by the set of columns they write, built once

# Columns of the lifecycle: only this module writes them.
LIFECYCLE = frozenset({"status", "assignee_id", "team_id", "queue_id", "routing_hold", "hold_until",
                       "snoozed_until", "waiting_since", "queued_at", "assigned_at", "accepted_at",
                       "resolved_at", "reopened_at", "routing_weight", "preferred_agent_id", "priority"})


@dataclass(frozen=True)
class Now:
    """What the lifecycle needs to know of a conversation before a change."""

    id: int
    status: str
    assignee_id: int | None
    team_id: int | None

    @classmethod
    def of(cls, conv: Conversation) -> Now:
        return cls(conv.id, conv.status, conv.assignee_id, conv.team_id)


@dataclass(frozen=True)
class Change:
    """Columns to write, the timeline row recording it (None: nothing to record), the event to publish."""

    conversation_id: int
    values: dict[str, Any] = field(default_factory=dict)
    transition: dict[str, Any] | None = None
    event: Event | None = None


def move(now: Now, to_status: str | None, *, at: dt.datetime, reason: str, actor_user_id: int | None = None,
         values: Mapping[str, Any] | None = None, changes: Mapping[str, Any] | None = None,
         record_assignee: int | bool | None = True, publish: bool = True, code: str = "",
         params: Mapping[str, Any] | None = None) -> Change:
    """Move the conversation to ``to_status`` (None: keep it) and set ``values`` (assignee, team, queue, …).

    The timeline row names the assignee and team after the change (``record_assignee`` may name another, e.g.
    the agent who lost it); the event carries ``changes``, by default the status pair.
    """
    status = to_status or now.status
    new = {k: v for k, v in (values or {}).items()}
    unknown = set(new) - LIFECYCLE - {"updated_at", "last_message_at"}
    assert not unknown, f"the lifecycle does not write {sorted(unknown)}"
    new["status"] = status
    new.setdefault("updated_at", at)
    assignee = new.get("assignee_id", now.assignee_id)
    team = new.get("team_id", now.team_id)
    recorded = assignee if record_assignee is True else (None if record_assignee is False else record_assignee)
    transition = {"conversation_id": now.id, "from_status": now.status, "to_status": status,
                  "assignee_id": recorded, "team_id": team, "actor_user_id": actor_user_id, "reason": reason,
                  "reason_code": code, "reason_params": dict(params or {}), "at": at}
    if changes is None:
        changes = {"status": [now.status, status]} if status != now.status else {}
    event = ConversationUpdated(conversation_id=now.id, team_id=team, assignee_id=assignee, status=status,
                                changes=dict(changes)) if publish else None
    return Change(now.id, new, transition, event)


def note(now: Now, *, at: dt.datetime, reason: str, code: str = "",
         params: Mapping[str, Any] | None = None) -> Change:
    """A line in the timeline about what happened to the conversation, with no change of status."""
    return Change(now.id, {}, {"conversation_id": now.id, "from_status": now.status, "to_status": now.status,
                               "assignee_id": now.assignee_id, "team_id": now.team_id, "actor_user_id": None,
                               "reason": reason, "reason_code": code, "reason_params": dict(params or {}),
                               "at": at})


def announce(now: Now, *, values: Mapping[str, Any] | None = None, **changes: object) -> Change:
    """Fields other than the lifecycle's changed (labels, subject, …): an event, no timeline row."""
    new = dict(values or {})
    status = new.get("status", now.status)
    return Change(now.id, new, None, ConversationUpdated(
        conversation_id=now.id, team_id=new.get("team_id", now.team_id),
        assignee_id=new.get("assignee_id", now.assignee_id), status=status, changes=dict(changes)))


def hold(now: Now, routing_hold: str, *, until: dt.datetime | bool | None = False) -> Change:
    """Routing holds the conversation for someone (``choice``/``manager``) or lets any agent take it (``free``);
    ``until`` moves the hold's end (False: keeps it). Recorded by the caller's note, announced by its event."""
    values: dict[str, Any] = {"routing_hold": routing_hold}
    if until is not False:
        values["hold_until"] = until
    return Change(now.id, values)


def created(*, conversation_id: int, contact_id: int, status: str, team_id: int | None, at: dt.datetime,
            reason: str, code: str = "", params: Mapping[str, Any] | None = None) -> Change:
    """A conversation was inserted (its row written by the caller's prebuilt insert): its first timeline row."""
    return Change(conversation_id, {}, {
        "conversation_id": conversation_id, "from_status": None, "to_status": status, "assignee_id": None,
        "team_id": team_id, "actor_user_id": None, "at": at, "reason": reason, "reason_code": code,
        "reason_params": dict(params or {})},
        ConversationCreated(conversation_id=conversation_id, team_id=team_id, assignee_id=None,
                            contact_id=contact_id, status=status))


async def start(tx: Tx, *, contact_id: int, status: str, at: dt.datetime, reason: str, subject: str = "",
                assignee_id: int | None = None, team_id: int | None = None, queue_id: int | None = None,
                channel_id: int | None = None, actor_user_id: int | None = None) -> Conversation:
    """A conversation we start (an agent's first message, a notification): the row, its first timeline line and
    ConversationCreated, as the intake makes for a customer's."""
    values: dict[str, Any] = {"assignee_id": assignee_id, "assigned_at": at if assignee_id else None,
                              "accepted_at": at if assignee_id else None, "team_id": team_id, "queue_id": queue_id,
                              "waiting_since": at if status == "waiting" else None,
                              "queued_at": at if status == "queued" else None}
    conv = Conversation(contact_id=contact_id, priority="normal", subject=subject[:300],
                        last_inbound_channel_id=channel_id, created_at=at, updated_at=at, last_message_at=at,
                        **values)
    conv.status = status
    tx.session.add(conv)
    await tx.session.flush()
    tx.session.add(Transition(conversation_id=conv.id, from_status=None, to_status=status, assignee_id=assignee_id,
                              team_id=team_id, actor_user_id=actor_user_id, at=at, reason=reason))
    tx.publish(ConversationCreated(conversation_id=conv.id, team_id=team_id, assignee_id=assignee_id,
                                   contact_id=contact_id, status=status))
    return conv


def wake(now: Now, *, at: dt.datetime, reason: str, publish: bool = True, code: str = "") -> Change:
    """The customer wrote to a conversation waiting for them, snoozed or resolved (or a snooze ended): it needs
    its agent again, or the queue."""
    target = "assigned" if now.assignee_id else "queued"
    values: dict[str, Any] = {"waiting_since": None, "snoozed_until": None}
    if target == "queued":
        values["queued_at"] = at
    if now.status == "resolved":
        values.update(reopened_at=at, resolved_at=None)
    return move(now, target, at=at, reason=reason, values=values, publish=publish, code=code)


# --- Writers -----------------------------------------------------------------------------------------------

def apply(tx: Tx, conv: Conversation | None, change: Change) -> None:
    """Write ``change`` through the ORM session of ``tx`` (``conv`` is the loaded row, when there is one)."""
    if change.transition is not None:
        # The row is built before the values are set: the same statement order as the Core writer.
        tx.session.add(Transition(**change.transition))
    if change.values:
        assert conv is not None and conv.id == change.conversation_id
        for key, value in change.values.items():
            setattr(conv, key, value)
    if change.event is not None:
        tx.publish(change.event)


def apply_core(conn: Connection, change: Change, events: list[Event]) -> None:
    """Write ``change`` with prebuilt Core statements on ``conn`` (inside ``run_sync``); the event joins
    ``events``, which the caller publishes on its transaction."""
    if change.values:
        keys = frozenset(change.values)
        stmt = _updates.get(keys)
        if stmt is None:
            stmt = _conversations.update().where(_conversations.c.id == bindparam("conversation_id_")).values(
                {k: bindparam(k) for k in sorted(keys)})
            _updates[keys] = stmt
        conn.execute(stmt, {"conversation_id_": change.conversation_id, **change.values})
    if change.transition is not None:
        conn.execute(_INSERT_TRANSITION, change.transition)
    if change.event is not None:
        events.append(change.event)

"""Fan events out to the agents' open sockets, each filtered by what its user may see.

Screens are not a place where anything must not be lost: a socket that falls behind is closed, and the
screen catches up from the database (GET /conversations, /messages?after_id=…) when it reconnects.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from kommutator.auth.principal import Principal
from kommutator.events import (
    AccessRevoked,
    AgentChanged,
    Bus,
    CannedChanged,
    ConversationEvent,
    ConversationUpdated,
    Event,
    EventsGap,
    NotificationCreated,
)

log = logging.getLogger(__name__)

QUEUE_LIMIT = 1000  # events a slow screen may lag behind before it is told to reconnect
CLOSE = "close"  # a payload {"close": code, "reason": …} tells the socket task to close the socket


@dataclass(eq=False)
class Connection:
    principal: Principal
    queue: asyncio.Queue[dict[str, Any] | None] = field(default_factory=lambda: asyncio.Queue(QUEUE_LIMIT))
    overflowed: bool = False


def may_see(principal: Principal, event: ConversationEvent) -> bool:
    """The same rule as the REST API, applied to the conversation before and after a change."""
    if principal.can_see_conversation(team_id=event.team_id, assignee_id=event.assignee_id):
        return True
    if isinstance(event, ConversationUpdated):
        # Whoever lost the conversation in a transfer must hear that it left their screen.
        before_assignee = (event.changes.get("assignee_id") or [None])[0]
        before_team = (event.changes.get("team_id") or [None])[0]
        return principal.can_see_conversation(team_id=before_team, assignee_id=before_assignee)
    return False


class Hub:
    """The sockets of this process; several processes each run one, fed by the shared bus."""

    def __init__(self, bus: Bus) -> None:
        self._connections: set[Connection] = set()
        self._seq = itertools.count(1)
        # Every process's events (cluster/): a socket here hears what was committed on any process.
        bus.subscribe(self._on_event, kinds=(ConversationEvent, NotificationCreated, CannedChanged), everywhere=True)
        bus.subscribe(self._on_agent, kinds=(AgentChanged,), everywhere=True)
        bus.subscribe(self._on_revoked, kinds=(AccessRevoked,), everywhere=True)
        bus.subscribe(self._on_gap, kinds=(EventsGap,), everywhere=True)

    def open(self, principal: Principal) -> Connection:
        conn = Connection(principal)
        self._connections.add(conn)
        return conn

    def close(self, conn: Connection) -> None:
        self._connections.discard(conn)

    def end(self, *, user_id: int, session_ids: Iterable[int] | None = None, token_ids: Iterable[int] = (),
            reason: str = "session_ended") -> int:
        """Close sockets of a user: all of them (``session_ids`` None, no ``token_ids``), or those opened with the
        given login sessions or API tokens; return how many."""
        sessions = None if session_ids is None else set(session_ids)
        tokens = set(token_ids)
        everything = sessions is None and not tokens
        ended = 0
        for conn in list(self._connections):
            p = conn.principal
            if p.user_id != user_id:
                continue
            if everything or (p.session_id is not None and p.session_id in (sessions or ())) \
                    or (p.token_id is not None and p.token_id in tokens):
                self._close(conn, 4401, reason)
                ended += 1
        return ended

    @staticmethod
    def _close(conn: Connection, code: int, reason: str) -> None:
        while not conn.queue.empty():  # what was queued is moot; the socket task waits on this queue
            conn.queue.get_nowait()
        conn.queue.put_nowait({CLOSE: code, "reason": reason})
        conn.overflowed = True  # nothing more is queued for it

    async def _on_revoked(self, event: Event) -> None:
        assert isinstance(event, AccessRevoked)
        self.end(user_id=event.user_id, session_ids=event.session_ids, token_ids=event.token_ids,
                 reason=event.reason)

    async def _on_gap(self, event: Event) -> None:
        """Events of other processes may have been missed: every screen reconnects and catches up (as when it
        falls behind), rather than show a list that silently lacks a message."""
        for conn in list(self._connections):
            if not conn.overflowed:
                self._close(conn, 4408, "events_gap")

    async def _on_agent(self, event: Event) -> None:
        assert isinstance(event, AgentChanged)
        if event.changes.get("active") is False:  # a deactivated user hears nothing more, on any process
            self.end(user_id=event.user_id, reason="user_deactivated")
            return
        role, team_ids = event.changes.get("role"), event.changes.get("team_ids")
        if role is None and team_ids is None:
            return
        # Rights changed: from this event on, the user's open sockets hear only what the new rights let them see,
        # and each screen is told to read its lists again.
        for conn in list(self._connections):
            p = conn.principal
            if p.user_id != event.user_id or conn.overflowed:
                continue
            conn.principal = replace(p, role=role if role is not None else p.role,
                                     team_ids=frozenset(team_ids) if team_ids is not None else p.team_ids)
            try:
                conn.queue.put_nowait({"seq": next(self._seq), "kind": "access.changed", "user_id": p.user_id,
                                       "role": conn.principal.role, "team_ids": sorted(conn.principal.team_ids)})
            except asyncio.QueueFull:
                self._close(conn, 4408, "too_slow")

    def reload(self, conn: Connection, principal: Principal) -> None:
        """Put the principal as just read from the database on a connection (closing the race with its opening)."""
        if conn in self._connections and not conn.overflowed:
            conn.principal = principal

    def count_for(self, user_id: int) -> int:
        return sum(1 for c in self._connections if c.principal.user_id == user_id)

    @staticmethod
    def _wants(principal: Principal, event: Event) -> bool:
        if isinstance(event, NotificationCreated):
            return principal.user_id == event.user_id  # a notification is for its recipient only
        if isinstance(event, CannedChanged):  # whoever may use the response (as GET /canned-responses lists them)
            return not event.team_ids or principal.is_supervisor or bool(principal.team_ids & set(event.team_ids))
        assert isinstance(event, ConversationEvent)
        return may_see(principal, event)

    async def _on_event(self, event: Event) -> None:
        payload = {"seq": next(self._seq), **event.to_dict()}
        for conn in list(self._connections):
            if conn.overflowed or not self._wants(conn.principal, event):
                continue
            try:
                conn.queue.put_nowait(payload)
            except asyncio.QueueFull:
                conn.overflowed = True  # the socket task closes it; the screen reconnects and catches up
                conn.queue = asyncio.Queue(1)
                conn.queue.put_nowait(None)

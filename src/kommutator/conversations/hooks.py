"""What other domains do inside the intake transaction (conversations/inbound.py), registered at start-up.

The intake is the core: it must not call up into the bot or quality. Instead they register here, from the
app's composition root (``bot.register_all()`` / ``quality.register_all()`` called by app.py), the few
synchronous steps they need on the intake's connection; the intake runs whatever is registered. Each hook is
given the transaction's ``Connection`` and runs prebuilt statements (one hop, like the intake itself).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy.engine import Connection


@dataclass(frozen=True)
class Said:
    """The customer's message as the hooks see it."""

    contact_id: int
    channel_id: int
    text: str
    button: str | None
    ts: dt.datetime


class Opener(Protocol):
    """Decides how a new conversation on a channel starts (the bot: with its flow, status ``bot``)."""

    def status_for(self, conn: Connection, channel_id: int) -> tuple[str, Any] | None:
        """The starting status and what ``opened`` needs later; None: not mine (the conversation is queued)."""
        ...

    def opened(self, conn: Connection, conversation_id: int, token: Any, ts: dt.datetime) -> None: ...


# (conn, said) -> the resolved conversation the message belongs to (id, status, assignee_id, team_id) or None
Finder = Callable[[Connection, Said], Any]
# (conn, conversation_id, assignee_id, said) -> True when the message was taken (it does not reopen)
Absorber = Callable[[Connection, int, int | None, Said], bool]
# (conn, conversation_id, ts): a customer message arrived in a conversation with this status
Waker = Callable[[Connection, int, dt.datetime], None]


@dataclass
class IntakeHooks:
    openers: dict[str, Opener] = field(default_factory=dict)
    finders: dict[str, Finder] = field(default_factory=dict)
    absorbers: dict[str, Absorber] = field(default_factory=dict)
    wakers: dict[str, Waker] = field(default_factory=dict)  # by the conversation's status

    def clear(self) -> None:
        for registry in (self.openers, self.finders, self.absorbers, self.wakers):
            registry.clear()


# One per process: intake runs as a plain function on the writer (no runtime in reach). Registering the same
# name again replaces the entry, so building several apps in one process (tests) is harmless.
intake = IntakeHooks()


def add_opener(name: str, opener: Opener) -> None:
    intake.openers[name] = opener


def add_finder(name: str, finder: Finder) -> None:
    """``finder`` may claim a message that matches no open conversation (e.g. the answer to a rating question)."""
    intake.finders[name] = finder


def add_absorber(name: str, absorber: Absorber) -> None:
    """``absorber`` may take a message to a resolved conversation so that it does not reopen it."""
    intake.absorbers[name] = absorber


def add_waker(status: str, waker: Waker) -> None:
    """``waker`` runs when a customer writes to a conversation in ``status`` (one per status)."""
    intake.wakers[status] = waker

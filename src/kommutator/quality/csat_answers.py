"""Understand a customer's answer to the rating question, and record it without reopening the conversation.

``take_answer`` runs inside the inbound transaction (``conversations/inbound.py`` calls it for a message to a
resolved conversation): a rating, or the comment that follows one, is stored there and then, and the
conversation stays resolved; anything else is an ordinary message that reopens it, as before.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, cast

from sqlalchemy import Table, bindparam, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from kommutator.common.text import words
from kommutator.conversations import hooks
from kommutator.conversations.models import Conversation
from kommutator.quality.models import QualityState, Rating

ANSWER_WINDOW = dt.timedelta(days=7)  # a rating answered later than this is a new request
COMMENT_WINDOW = dt.timedelta(hours=1)  # after the comment question; later text is a new request
# Text right after the score, before the follow-up has thanked or asked for a comment (customers often send
# both at once: "2", "the courier was rude"), is the rating's comment.
RATED_COMMENT_WINDOW = dt.timedelta(minutes=2)
SCALES = {"csat": (1, 5), "nps": (0, 10)}

_WORDS = {  # short answers in words, on the 1-5 scale
    5: {"отлично", "супер", "прекрасно", "замечательно", "великолепно", "excellent", "great", "perfect",
        "awesome", "amazing", "пять", "five"},
    4: {"хорошо", "good", "четыре", "four", "fine", "nice"},
    3: {"нормально", "норм", "ok", "okay", "normal", "average", "три", "three", "средне"},
    2: {"плохо", "bad", "poor", "два", "two"},
    1: {"ужасно", "отвратительно", "кошмар", "terrible", "awful", "horrible", "один", "one"},
}
_VERY = {"очень", "very", "совсем", "really"}
_NUMBER = re.compile(r"^\s*(\d{1,2})(?!\d)(?![.,:]\d)\s*(?:/\s*\d+|(?:из|of|out of)\s*\d+|[-–—:.,)!/])?\s*(.*)$",
                     re.S | re.I)

_state = cast(Table, QualityState.__table__)
_ratings = cast(Table, Rating.__table__)
_conversations = cast(Table, Conversation.__table__)
_STATE = (select(_state.c.csat_state, _state.c.csat_scale, _state.c.csat_asked_at, _state.c.updated_at,
                 _ratings.c.comment.label("rating_comment"))
          .outerjoin(_ratings, _ratings.c.conversation_id == _state.c.conversation_id)
          .where(_state.c.conversation_id == bindparam("cid")))
# The contact's latest resolved conversation and where its rating question stands.
_LATEST_RESOLVED = (
    select(_conversations.c.id, _conversations.c.status, _conversations.c.assignee_id, _conversations.c.team_id,
           _state.c.csat_state, _state.c.csat_scale, _state.c.csat_asked_at, _state.c.updated_at,
           _ratings.c.comment.label("rating_comment"))
    .join(_state, _state.c.conversation_id == _conversations.c.id)
    .outerjoin(_ratings, _ratings.c.conversation_id == _conversations.c.id)
    .where(_conversations.c.contact_id == bindparam("contact_id_"), _conversations.c.status == "resolved",
           _state.c.csat_state.in_(("asked", "rated", "comment")))
    .order_by(_conversations.c.id.desc()).limit(1))
_SET_STATE = _state.update().where(_state.c.conversation_id == bindparam("cid")).values(
    csat_state=bindparam("new_state"), updated_at=bindparam("ts"))
_SET_COMMENT = _ratings.update().where(_ratings.c.conversation_id == bindparam("cid")).values(
    comment=bindparam("comment_"))


def parse_answer(text: str, button: str | None, scale: str) -> tuple[int, str] | None:
    """(score, comment) from a button id, a leading number, or a short answer in words; None otherwise."""
    low, high = SCALES[scale]
    if button and button.startswith(f"{scale}:"):
        try:
            score = int(button.split(":", 1)[1])
        except ValueError:
            return None
        return (score, "") if low <= score <= high else None
    found = _NUMBER.match(text or "")
    if found:
        score = int(found.group(1))
        if low <= score <= high:
            return score, found.group(2).strip()
        return None
    said = words(text or "")
    if scale != "csat" or not said or len(said) > 4:
        return None
    for score, vocabulary in _WORDS.items():
        if any(w in vocabulary for w in said):
            if score in (2, 4) and any(w in _VERY for w in said):
                score = 1 if score == 2 else 5
            return score, ""
    return None


def _is_answer(row: Any, text: str, button: str | None, ts: dt.datetime) -> bool:
    if row.csat_state == "asked":
        return ts - row.csat_asked_at <= ANSWER_WINDOW and parse_answer(text, button, row.csat_scale) is not None
    if row.csat_state == "rated" and row.rating_comment:
        return False  # the score came with its comment, or one already followed: more text is a new request
    window = {"comment": COMMENT_WINDOW, "rated": RATED_COMMENT_WINDOW}.get(row.csat_state)
    return window is not None and ts - row.updated_at <= window and bool((text or "").strip())


def answered_conversation(conn: Connection, *, contact_id: int, text: str, button: str | None,
                          ts: dt.datetime) -> Any:
    """The resolved conversation this message answers the rating question (or comment question) of, if it does
    (id, status, assignee_id, team_id); None otherwise. For channels where a message after resolution starts a
    new conversation (messengers, SMS)."""
    row = conn.execute(_LATEST_RESOLVED, {"contact_id_": contact_id}).first()
    if row is None or not _is_answer(row, text, button, ts):
        return None
    return row[:4]


def take_answer(conn: Connection, *, conversation_id: int, contact_id: int, assignee_id: int | None,
                channel_id: int, text: str, button: str | None, ts: dt.datetime) -> bool:
    """Record ``text`` as the rating (or its comment) when the customer was asked; True when it was one."""
    row = conn.execute(_STATE, {"cid": conversation_id}).first()
    if row is None or row.csat_asked_at is None or not _is_answer(row, text, button, ts):
        return False
    if row.csat_state == "asked":
        parsed = parse_answer(text, button, row.csat_scale)
        assert parsed is not None
        score, comment = parsed
        insert: Any = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(_ratings)
        conn.execute(insert.on_conflict_do_nothing(), {
            "conversation_id": conversation_id, "contact_id": contact_id, "scale": row.csat_scale, "score": score,
            "comment": comment, "channel_id": channel_id, "agent_id": assignee_id, "created_at": ts})
        conn.execute(_SET_STATE, {"cid": conversation_id, "new_state": "rated", "ts": ts})
        return True
    conn.execute(_SET_COMMENT, {"cid": conversation_id, "comment_": text.strip()[:4000]})
    if row.csat_state == "comment":  # a comment before the follow-up leaves it "rated": the follow-up still alerts
        conn.execute(_SET_STATE, {"cid": conversation_id, "new_state": "commented", "ts": ts})
    return True


def register() -> None:
    """Hook rating answers into the intake: an answer goes to the conversation that asked, and does not reopen it."""
    hooks.add_finder("csat", lambda conn, said: answered_conversation(
        conn, contact_id=said.contact_id, text=said.text, button=said.button, ts=said.ts))
    hooks.add_absorber("csat", lambda conn, conversation_id, assignee_id, said: take_answer(
        conn, conversation_id=conversation_id, contact_id=said.contact_id, assignee_id=assignee_id,
        channel_id=said.channel_id, text=said.text, button=said.button, ts=said.ts))

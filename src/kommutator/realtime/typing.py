"""Frames a screen sends on its socket: an agent's typing indicator, checked against what they may see."""

from __future__ import annotations

import logging

from kommutator.agents.actions import do_record_activity
from kommutator.auth.principal import Principal
from kommutator.clock import now
from kommutator.common.jsonsafe import loads_json
from kommutator.conversations import queries
from kommutator.errors import ProblemError
from kommutator.events import ConversationTyping
from kommutator.runtime import Runtime

log = logging.getLogger(__name__)

MAX_FRAME = 1000  # a typing frame is a few dozen bytes; anything longer is not one
REPEAT_SECONDS = 2.0  # the same "still typing" is passed on at most this often per conversation
ACTIVITY_SECONDS = 20.0  # typing is recorded as the agent's activity (users.last_active_at) at most this often


class TypingBudget:
    """A token bucket for one typist: ``burst`` signals at once, refilled at ``per_second``; the rest are dropped
    quietly (typing is best effort). Screens send one "typing" every few seconds, so only a flood is cut."""

    def __init__(self, burst: int = 5, per_second: float = 1.0) -> None:
        self.burst, self.per_second = burst, per_second
        self.tokens = float(burst)
        self.at = now()

    def _refill(self) -> None:
        t = now()
        elapsed = max(0.0, (t - self.at).total_seconds())
        self.tokens, self.at = min(float(self.burst), self.tokens + elapsed * self.per_second), t

    def full(self) -> bool:
        self._refill()
        return self.tokens >= self.burst

    def allow(self) -> bool:
        self._refill()
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class TypingFrames:
    """Turn {"type": "typing", "conversation_id": N, "typing": bool} into ConversationTyping on the bus."""

    def __init__(self, rt: Runtime, principal: Principal) -> None:
        self.rt = rt
        self.principal = principal
        self._last: dict[int, tuple[bool, float]] = {}
        self._budget = TypingBudget()
        self._recorded = -ACTIVITY_SECONDS

    async def handle(self, text: str) -> None:
        if len(text) > MAX_FRAME:
            return
        try:
            frame = loads_json(text)
        except ValueError:
            return
        if not isinstance(frame, dict) or frame.get("type") != "typing":
            return
        cid, typing = frame.get("conversation_id"), frame.get("typing", True)
        if type(cid) is not int or cid < 1 or not isinstance(typing, bool):
            return
        at = now().timestamp()
        previous = self._last.get(cid)
        if previous is not None and previous[0] == typing and at - previous[1] < REPEAT_SECONDS:
            return
        if not self._budget.allow():  # a flood (toggling, many conversations): dropped before any database read
            return
        try:
            async with self.rt.db.read() as s:  # the permission is checked on every frame: teams change
                conv = await queries.get_conversation(s, self.principal, cid)
        except ProblemError:
            return  # a conversation they may not see: nothing is published, nothing is said
        self._last[cid] = (typing, at)
        if typing and at - self._recorded >= ACTIVITY_SECONDS:
            # The accept timeout leaves an agent who is answering someone alone (routing/service.py).
            self._recorded = at
            user_id, ts = self.principal.user_id, now()
            await self.rt.db.write(lambda tx: do_record_activity(tx, user_id=user_id, at=ts))
        # Screens only, never stored: published straight on the bus; the hub filters it per socket as any event.
        await self.rt.bus.publish(ConversationTyping(
            conversation_id=conv.id, team_id=conv.team_id, assignee_id=conv.assignee_id, who="agent",
            user_id=self.principal.user_id, name=self.principal.name, typing=typing))

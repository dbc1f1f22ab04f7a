"""The visitor's WebSocket: what the widget shows live, and the way its messages come in.

Nothing here is the only copy of anything. The socket carries hints and copies: each message the visitor
sends is committed through the ingest path before it is acknowledged ({"type": "ack", "client_id"}), and
the widget keeps it in its local outbox until then; what the visitor is shown is read from the database
(their conversation's customer-visible messages on this channel) whenever the bus says something changed
and on every (re)connect after the last id the widget saw.

Frames from the widget: {"type": "hello", "token", "after_id"} first, then {"type": "message", "client_id",
"text", "button"?}, {"type": "typing", "typing"}, {"type": "seen", "ids"}. Frames to it: "ready",
"messages", "ack", "error", "typing" (the agent's), "agent" (who answers now).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from fastapi import WebSocket
from pydantic import ValidationError
from sqlalchemy import select
from starlette.websockets import WebSocketDisconnect

from kommutator.channels.types.webchat import messages as msgs
from kommutator.channels.types.webchat.api import VisitorMessage, router
from kommutator.channels.types.webchat.visitors import (
    Webchat,
    agents_online,
    check_origin,
    contact_of,
    load_webchat,
    missing_prechat,
    visitor_by_token,
)
from kommutator.common.jsonsafe import UnsafeInput, loads_json
from kommutator.common.schemas import Id
from kommutator.conversations.models import Conversation
from kommutator.errors import ProblemError
from kommutator.events import Bus, ConversationCreated, ConversationEvent, ConversationTyping, Event, EventsGap
from kommutator.realtime.typing import TypingBudget
from kommutator.runtime import Runtime

log = logging.getLogger(__name__)
HELLO_SECONDS = 10.0
SYNC = {"type": "sync"}


@dataclass(eq=False)
class VisitorConnection:
    external_id: str
    contact_id: int | None
    conversations: set[int] = field(default_factory=set)
    queue: asyncio.Queue[dict[str, Any]] = field(default_factory=lambda: asyncio.Queue(200))
    sync_pending: bool = False

    def poke(self) -> None:
        """Ask the socket to read the database again (one pending request is enough)."""
        if not self.sync_pending:
            self.sync_pending = True
            with contextlib.suppress(asyncio.QueueFull):
                self.queue.put_nowait(SYNC)


class WidgetHub:
    """The visitors' sockets of this process, told by the bus when their conversation changed."""

    def __init__(self, bus: Bus) -> None:
        self.connections: set[VisitorConnection] = set()
        # Per visitor, shared by all their tabs: typing frames past it are dropped quietly.
        self.typing_budgets: dict[str, TypingBudget] = {}
        bus.subscribe(self._on_event, kinds=(ConversationEvent,), everywhere=True)  # any process's (cluster/)
        bus.subscribe(self._on_gap, kinds=(EventsGap,), everywhere=True)

    async def _on_gap(self, event: Event) -> None:
        """Events of other processes may have been missed: each visitor's socket reads the database again."""
        for conn in list(self.connections):
            conn.poke()

    async def _on_event(self, event: Event) -> None:
        assert isinstance(event, ConversationEvent)
        for conn in list(self.connections):
            if isinstance(event, ConversationTyping):
                if event.who == "agent" and event.conversation_id in conn.conversations:
                    with contextlib.suppress(asyncio.QueueFull):
                        conn.queue.put_nowait({"type": "typing", "typing": event.typing, "name": event.name})
            elif event.conversation_id in conn.conversations or (
                    isinstance(event, ConversationCreated) and conn.contact_id in (None, event.contact_id)):
                conn.poke()


def widget_hub(rt: Runtime) -> WidgetHub:
    if rt.widget_hub is None:
        rt.widget_hub = WidgetHub(rt.bus)
    return rt.widget_hub


class Session:
    """One open socket of one visitor."""

    def __init__(self, rt: Runtime, chat: Webchat, ws: WebSocket, conn: VisitorConnection, visitor_id: int) -> None:
        self.rt, self.chat, self.ws, self.conn, self.visitor_id = rt, chat, ws, conn, visitor_id
        self.sent: set[int] = set()
        self.last_id = 0
        self.agent = ""
        self.lock = asyncio.Lock()

    async def send(self, frame: dict[str, Any]) -> None:
        async with self.lock:
            await self.ws.send_text(json.dumps(frame, ensure_ascii=False))

    async def sync(self) -> None:
        """Send what the visitor has not seen: new messages (and late-visible ones), and who answers."""
        self.conn.sync_pending = False
        if self.conn.contact_id is None:
            self.conn.contact_id = await contact_of(self.rt, await self._visitor())
        contact_id = self.conn.contact_id
        if contact_id is None:
            return
        _, agent = await msgs.current_agent(self.rt, contact_id)
        async with self.rt.db.read() as s:
            self.conn.conversations = set((await s.execute(
                select(Conversation.id).where(Conversation.contact_id == contact_id))).scalars())
        while True:
            batch = [m for m in await msgs.visible_messages(self.rt, self.chat, contact_id, after_id=self.last_id,
                                                            recent=True) if m["id"] not in self.sent]
            if not batch:
                break
            self.sent.update(m["id"] for m in batch)
            self.last_id = max(self.last_id, *(m["id"] for m in batch))
            await self.send({"type": "messages", "messages": batch})
            if len(batch) < msgs.PAGE:
                break
        if agent != self.agent:
            self.agent = agent
            await self.send({"type": "agent", "name": agent})

    async def _visitor(self) -> Any:
        from kommutator.channels.types.webchat.models import WebchatVisitor

        async with self.rt.db.read() as s:
            return await s.get(WebchatVisitor, self.visitor_id)

    async def handle(self, frame: dict[str, Any]) -> None:
        kind = frame.get("type")
        if kind == "message":
            await self._message(frame)
        elif kind == "typing":
            await self._typing(bool(frame.get("typing")))
        elif kind == "seen" and self.conn.contact_id is not None:
            ids = [i for i in frame.get("ids") or [] if isinstance(i, int)][:100]
            if ids:
                await msgs.mark_delivered(self.rt, self.chat, self.conn.contact_id, ids)
        else:
            await self.send({"type": "error", "code": "unknown_frame",
                             "detail": "Send frames of type message, typing or seen."})

    async def _message(self, frame: dict[str, Any]) -> None:
        client_id = frame.get("client_id") if isinstance(frame.get("client_id"), str) else None
        try:
            body = VisitorMessage.model_validate({k: frame[k] for k in ("client_id", "text", "button") if k in frame})
            if not body.text and body.button is None:
                raise ProblemError(422, "empty_message", "Write a text, press a button or attach a file.")
            visitor = await self._visitor()
            missing = missing_prechat(self.chat, visitor)
            if missing:
                raise ProblemError(422, "prechat_required", f"Fill in the form first: {', '.join(missing)}.")
            result = await msgs.receive(self.rt, self.chat, visitor, client_id=body.client_id,
                                        text=body.text or body.button or "", button=body.button)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or "frame"
            await self.send({"type": "error", "client_id": client_id, "code": "validation_failed",
                             "detail": f"{where}: {err['msg']}"})
            return
        except ProblemError as exc:
            await self.send({"type": "error", "client_id": client_id, "code": exc.code, "detail": exc.detail})
            return
        await self.send({"type": "ack", **result})
        await self.sync()

    async def _typing(self, typing: bool) -> None:
        """Tell the agents' screens (through the bus, never stored), within the visitor's typing budget."""
        contact_id = self.conn.contact_id
        if contact_id is None:
            return
        budgets = widget_hub(self.rt).typing_budgets
        if len(budgets) > 10_000:  # forget visitors whose budget has refilled (kept past disconnects on purpose)
            for key in [k for k, v in budgets.items() if v.full()]:
                del budgets[key]
        budget = budgets.setdefault(self.conn.external_id, TypingBudget())
        if not budget.allow():
            return
        async with self.rt.db.read() as s:
            row = (await s.execute(select(Conversation.id, Conversation.team_id, Conversation.assignee_id)
                                   .where(Conversation.contact_id == contact_id, Conversation.status != "resolved")
                                   .order_by(Conversation.id.desc()).limit(1))).first()
        if row is not None:
            await self.rt.bus.publish(ConversationTyping(conversation_id=row[0], team_id=row[1], assignee_id=row[2],
                                                         who="contact", typing=typing))


@router.websocket("/widget/{channel_id}/socket")
async def visitor_socket(ws: WebSocket, channel_id: Id) -> None:
    """The visitor's live chat; authenticate with the first frame {"type": "hello", "token", "after_id"}."""
    rt: Runtime = ws.app.state.runtime
    try:
        chat = await load_webchat(rt, channel_id)
        check_origin(chat, ws.headers.get("origin"))
    except ProblemError as exc:
        await ws.close(code=4404 if exc.status == 404 else 4403, reason=exc.code)
        return
    await ws.accept()
    try:
        hello = loads_json(await asyncio.wait_for(ws.receive_text(), HELLO_SECONDS))
    except (TimeoutError, ValueError, WebSocketDisconnect, KeyError):
        await _refuse(ws, 4400, "hello_expected")
        return
    token = hello.get("token") if isinstance(hello, dict) else None
    visitor = await visitor_by_token(rt, chat, token) if isinstance(token, str) else None
    if visitor is None:
        await _refuse(ws, 4401, "invalid_visitor_token")
        return
    after = hello.get("after_id")
    hub = widget_hub(rt)
    conn = VisitorConnection(external_id=visitor.external_id, contact_id=await contact_of(rt, visitor))
    session = Session(rt, chat, ws, conn, visitor.id)
    session.last_id = after if isinstance(after, int) and after >= 0 else 0
    hub.connections.add(conn)
    try:
        await session.send({"type": "ready", "online": await agents_online(rt, chat),
                            "missing": missing_prechat(chat, visitor)})
        await session.sync()
        await _serve(session)
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        hub.connections.discard(conn)


async def _serve(session: Session) -> None:
    async def pump() -> None:
        while True:
            frame = await session.conn.queue.get()
            if frame is SYNC:
                await session.sync()
            else:
                await session.send(frame)

    async def read() -> None:
        while True:
            text = await session.ws.receive_text()
            try:
                frame = loads_json(text, where="frame")
            except UnsafeInput as exc:
                await session.send({"type": "error", "code": exc.code, "detail": exc.detail})
                continue
            if not isinstance(frame, dict):
                await session.send({"type": "error", "code": "invalid_json", "detail": "Frames are JSON objects."})
                continue
            await session.handle(frame)

    tasks = {asyncio.create_task(pump()), asyncio.create_task(read())}
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            exc = task.exception()
            if exc is not None and not isinstance(exc, WebSocketDisconnect | RuntimeError):
                log.error("web chat socket failed", exc_info=exc)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
                await task


async def _refuse(ws: WebSocket, code: int, reason: str) -> None:
    with contextlib.suppress(RuntimeError, WebSocketDisconnect):
        await ws.send_text(json.dumps({"type": "error", "code": reason}))
        await ws.close(code=code, reason=reason)



"""/api/v1/realtime: one WebSocket per open screen, carrying the events its user may see."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from urllib.parse import urlsplit

from fastapi import APIRouter, WebSocket
from sqlalchemy import update
from starlette.websockets import WebSocketDisconnect

from kommutator.agents.models import User
from kommutator.auth.deps import authenticate, reload_principal
from kommutator.clock import now
from kommutator.db import Tx
from kommutator.errors import ProblemError
from kommutator.events import AgentChanged
from kommutator.realtime.hub import CLOSE, Hub
from kommutator.realtime.typing import TypingFrames
from kommutator.runtime import Runtime
from kommutator.workers.base import BackgroundTask

log = logging.getLogger(__name__)
router = APIRouter()


def hub_of(rt: Runtime) -> Hub:
    if rt.hub is None:
        rt.hub = Hub(rt.bus)
    return rt.hub


def _same_origin(ws: WebSocket, rt: Runtime) -> bool:
    """Refuse cross-site WebSocket hijacking: a browser's Origin must be this server's."""
    origin = ws.headers.get("origin")
    if origin is None:
        return True  # not a browser (browsers always send Origin on WebSocket handshakes)
    allowed = {urlsplit(rt.settings.public_base_url).netloc, ws.headers.get("host", "")}
    return urlsplit(origin).netloc in allowed


async def _set_presence(rt: Runtime, user_id: int, presence: str) -> None:
    async def job(tx: Tx) -> None:
        changed = await tx.conn.execute(
            update(User).where(User.id == user_id, User.presence != presence)
            .values(presence=presence, presence_changed_at=now()))
        if changed.rowcount:
            tx.publish(AgentChanged(user_id=user_id, changes={"presence": presence}))

    await rt.db.write(job)


class PresenceSweeper(BackgroundTask):
    """Users whose last screens were on a process that died (its presence entries expired, cluster/) go away."""

    name_in_logs = "presence-sweeper"

    def __init__(self, rt: Runtime, interval: float = 10.0) -> None:
        super().__init__()
        self.rt, self.interval = rt, interval

    async def run_due(self) -> int:
        gone = await self.rt.cluster.presence.expired()
        for user_id in gone:
            await _set_presence(self.rt, user_id, "away")
        return len(gone)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.run_due()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("presence sweep failed; the next one retries")


@router.websocket("/realtime")
async def realtime(ws: WebSocket) -> None:
    """Events of the conversations the user may see, as JSON: {seq, kind, conversation_id, …}.

    Authenticate with the session cookie (browsers) or 'Authorization: Bearer <API token>'. After a
    reconnect, catch up from the REST API; the socket does not replay. The user is online while at least
    one of their screens is connected, and away when the last one closes.
    """
    rt: Runtime = ws.app.state.runtime
    try:
        principal = await authenticate(ws, rt)
    except ProblemError as exc:
        await ws.close(code=4401 if exc.status == 401 else 4403, reason=exc.code)
        return
    if not _same_origin(ws, rt):
        await ws.close(code=4403, reason="origin_not_allowed")
        return
    hub = hub_of(rt)
    conn = hub.open(principal)
    # Read the rights again now that the hub would hear of any change: a password change, a revoked token or a
    # demotion committed while this socket was being authenticated is not missed.
    fresh = await reload_principal(rt, principal)
    if fresh is None:
        hub.close(conn)
        await ws.close(code=4401, reason="session_ended")
        return
    hub.reload(conn, fresh)
    await ws.accept()
    screen = principal.token_id is None  # an integration's socket (an API token) is not a person at a screen

    async def pump() -> None:
        while True:
            payload = await conn.queue.get()
            if payload is None:  # fell too far behind: reconnect and catch up
                await ws.close(code=4408, reason="too_slow")
                return
            if CLOSE in payload:  # logged out, deactivated, password changed, token revoked: nothing more
                await ws.close(code=int(payload[CLOSE]), reason=str(payload.get("reason", "")))
                return
            await ws.send_json(payload)

    async def drain() -> None:
        typing = TypingFrames(rt, principal)
        while True:
            frame = await ws.receive()
            if frame["type"] == "websocket.disconnect":
                return
            if frame.get("text"):
                typing.principal = conn.principal  # the hub keeps it current as rights change
                await typing.handle(frame["text"])  # anything else the screen sends is ignored

    tasks: set[asyncio.Task[None]] = set()
    try:  # from here on the finally below undoes what was counted: the hub's connection, the presence screen
        if screen and await rt.cluster.presence.opened(principal.user_id):  # their first screen on any process
            await _set_presence(rt, principal.user_id, "online")
        await ws.send_json({"kind": "hello", "user_id": principal.user_id})
        tasks = {asyncio.create_task(pump()), asyncio.create_task(drain())}
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
                await task
        hub.close(conn)
        if screen and await rt.cluster.presence.closed(principal.user_id):  # their last screen on any process
            await _set_presence(rt, principal.user_id, "away")

"""A Telegram Bot API simulator on loopback that enforces the documented limits (bench/campaign.py, P9).

``POST /bot<token>/sendMessage`` is accepted while the bot has sent fewer than ``--rate`` messages in the last
second (a sliding window) and the chat got nothing in the last ``1 / --per-chat`` seconds; otherwise it answers
429 ``Too Many Requests: retry after 1`` as Telegram does. ``GET /stats`` says what was accepted and refused,
accepted messages per wall-clock second, and when each text starting with ``reply-`` arrived (time.time()).

    python bench/provider_sim.py --port 8931 --rate 30 --per-chat 1
"""

from __future__ import annotations

import argparse
import collections
import time
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


class Limits:
    def __init__(self, rate: float, per_chat: float) -> None:
        self.rate = rate
        self.chat_gap = 1.0 / per_chat
        self.window: collections.deque[float] = collections.deque()
        self.last_by_chat: dict[str, float] = {}
        self.accepted = 0
        self.refused = 0
        self.refused_bot = 0
        self.refused_chat = 0
        self.per_second: collections.Counter[int] = collections.Counter()
        self.replies: dict[str, float] = {}
        self.next_id = 1


def app_of(limits: Limits) -> Starlette:
    async def send(request: Request) -> JSONResponse:
        body: dict[str, Any] = await request.json()
        t = time.monotonic()
        chat = str(body.get("chat_id"))
        while limits.window and limits.window[0] <= t - 1.0:
            limits.window.popleft()
        bot_full = len(limits.window) >= limits.rate
        chat_busy = t - limits.last_by_chat.get(chat, -1e9) < limits.chat_gap
        if bot_full or chat_busy:
            limits.refused += 1
            limits.refused_bot += bot_full
            limits.refused_chat += chat_busy
            return JSONResponse({"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 1",
                                 "parameters": {"retry_after": 1}}, status_code=429)
        limits.window.append(t)
        limits.last_by_chat[chat] = t
        limits.accepted += 1
        wall = time.time()
        limits.per_second[int(wall)] += 1
        text = str(body.get("text", ""))
        if text.startswith("reply-"):
            limits.replies[text.split()[0]] = wall
        limits.next_id += 1
        return JSONResponse({"ok": True, "result": {"message_id": limits.next_id, "date": int(wall), "text": text,
                                                    "chat": {"id": int(chat) if chat.isdigit() else chat,
                                                             "type": "private"}}})

    async def stats(request: Request) -> JSONResponse:
        return JSONResponse({"accepted": limits.accepted, "refused": limits.refused,
                             "refused_bot_limit": limits.refused_bot, "refused_chat_limit": limits.refused_chat,
                             "per_second": {str(k): v for k, v in sorted(limits.per_second.items())},
                             "replies": limits.replies})

    return Starlette(routes=[Route("/bot{token}/sendMessage", send, methods=["POST"]),
                             Route("/stats", stats, methods=["GET"])])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--rate", type=float, default=30.0, help="messages a second per bot")
    parser.add_argument("--per-chat", type=float, default=1.0, help="messages a second per chat")
    args = parser.parse_args()
    uvicorn.run(app_of(Limits(args.rate, args.per_chat)), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()

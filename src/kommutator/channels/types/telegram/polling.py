"""Long polling (``getUpdates``) for Telegram channels in mode "polling", where no public URL exists.

One task per polling channel; the list is read again every ``refresh_interval`` seconds, so a channel
added, changed or switched to webhooks is picked up without a restart. Each update is committed through
``host.ingest`` exactly like a webhook's, and only then is the offset (last update_id + 1) stored: a crash
in between fetches the same updates again, and their event ids make the repeat a no-op.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from kommutator.channels.base import ChannelConfig, ChannelHost, ChannelProblem
from kommutator.channels.types.telegram.botapi import DEFAULT_API_BASE_URL, BotApi, BotApiError
from kommutator.channels.types.telegram.updates import ALLOWED_UPDATES, items_of, validate_update
from kommutator.errors import ProblemError

log = logging.getLogger(__name__)

OFFSET_KEY = "offset"
DEFAULT_POLL_TIMEOUT = 10


class PollError(Exception):
    """One round of polling failed; the message says why and what to do, ``code`` the kind of problem for the
    channel's health (channels.base.PROBLEM_CODES)."""

    def __init__(self, message: str, code: str = "provider") -> None:
        super().__init__(message)
        self.code = code


def problem_code(exc: BotApiError) -> str:
    """The health code of a refused Bot API call: a rejected token fails the channel at once."""
    return "auth" if exc.status in (401, 403) else "connect" if exc.status == 0 else "provider"


def is_polling(channel: ChannelConfig) -> bool:
    return channel.settings.get("mode") == "polling"


def poll_timeout(channel: ChannelConfig) -> int:
    value = channel.settings.get("poll_timeout", DEFAULT_POLL_TIMEOUT)
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 50 else 10


def _conflict(channel: ChannelConfig, exc: BotApiError) -> PollError:
    if "webhook" in exc.description.lower():
        base = str(channel.settings.get("api_base_url") or DEFAULT_API_BASE_URL).rstrip("/")
        return PollError(
            f"Telegram refuses getUpdates while a webhook is set for this bot (409: {exc.description}). Either "
            "set the channel's mode to \"webhook\", or remove the webhook with "
            f"curl -X POST '{base}/bot<bot_token>/deleteWebhook'.", "config")
    return PollError(f"Telegram refused getUpdates (409: {exc.description}): another program is polling this "
                     "bot with the same token; stop it, only one may poll a bot.", "config")


class Poller:
    """``run`` keeps a polling task per channel; ``poll_once`` is one getUpdates round (tests call it)."""

    def __init__(self, channel_type: str, *, refresh_interval: float = 10.0, error_delay: float = 5.0,
                 max_error_delay: float = 300.0, idle_delay: float = 1.0) -> None:
        self.channel_type = channel_type
        self.refresh_interval = refresh_interval
        self.error_delay = error_delay
        self.max_error_delay = max_error_delay
        self.idle_delay = idle_delay  # between rounds when poll_timeout is 0 (short polling)

    async def run(self, host: ChannelHost) -> None:
        tasks: dict[int, tuple[ChannelConfig, asyncio.Task[None]]] = {}
        try:
            while True:
                wanted = {c.id: c for c in await host.channels(self.channel_type) if is_polling(c)}
                for channel_id, (config, task) in list(tasks.items()):
                    if wanted.get(channel_id) != config or task.done():
                        await _cancel(task)
                        del tasks[channel_id]
                for channel_id, config in wanted.items():
                    if channel_id not in tasks:
                        task = asyncio.create_task(self._poll_forever(host, config),
                                                   name=f"telegram-poll:{channel_id}")
                        tasks[channel_id] = (config, task)
                await asyncio.sleep(self.refresh_interval)
        finally:
            for _, task in tasks.values():
                await _cancel(task)

    async def _poll_forever(self, host: ChannelHost, channel: ChannelConfig) -> None:
        failures = 0
        while True:
            try:
                received = await self.poll_once(host, channel)
                failures = 0
                await host.report(channel.id, None)
                if received == 0 and poll_timeout(channel) == 0:
                    await asyncio.sleep(self.idle_delay)
                continue
            except PollError as exc:
                failures += 1
                log.warning("Telegram channel %s (%s): %s", channel.id, channel.name, exc)
                with contextlib.suppress(Exception):
                    await host.report(channel.id, ChannelProblem(exc.code, str(exc)))
            except Exception:
                failures += 1
                log.exception("Telegram channel %s (%s): polling failed", channel.id, channel.name)
            await asyncio.sleep(min(self.max_error_delay, self.error_delay * 2 ** min(failures - 1, 10)))

    async def poll_once(self, host: ChannelHost, channel: ChannelConfig) -> int:
        """Fetch the next updates, commit them, then store the offset; return how many updates came."""
        api = BotApi(channel, host.client)
        stored = await host.get_state(channel.id, OFFSET_KEY)
        offset = int(stored) if stored and stored.isdigit() else None
        timeout = poll_timeout(channel)
        params: dict[str, Any] = {"timeout": timeout, "limit": 100, "allowed_updates": list(ALLOWED_UPDATES)}
        if offset is not None:
            params["offset"] = offset
        try:
            updates = await api.call("getUpdates", params, request_timeout=timeout + 15.0)
        except BotApiError as exc:
            raise (_conflict(channel, exc) if exc.status == 409 else PollError(exc.reason, problem_code(exc))) from None
        if not isinstance(updates, list):
            raise PollError("getUpdates answered without a list of updates; is api_base_url a Bot API server?")
        next_offset = offset
        callbacks: list[str] = []
        try:
            for raw in updates:
                update_id = raw.get("update_id") if isinstance(raw, dict) else None
                if not isinstance(update_id, int) or isinstance(update_id, bool) or update_id < 0:
                    log.error("Telegram channel %s: getUpdates gave an update without update_id; skipped", channel.id)
                    continue
                try:
                    update = validate_update(raw)
                except ProblemError as exc:
                    # Nothing to keep but the log: refusing it would block every later update.
                    log.error("Telegram channel %s: update %s skipped: %s", channel.id, update_id, exc.detail)
                else:
                    items = items_of(update)
                    if items:
                        body = json.dumps(raw, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
                        try:
                            await host.ingest(channel, items, body)
                        except ProblemError as exc:
                            raise PollError(f"update {update_id} could not be committed ({exc.detail}); it is "
                                            "fetched again in the next round") from exc
                    if update.callback_query is not None:
                        callbacks.append(update.callback_query.id)
                next_offset = max(next_offset or 0, update_id + 1)
        except Exception:
            # What was committed stays committed: move past it so only the failed update comes again.
            if next_offset is not None and next_offset != offset:
                await host.set_state(channel.id, OFFSET_KEY, str(next_offset))
            raise
        if next_offset is not None and next_offset != offset:
            await host.set_state(channel.id, OFFSET_KEY, str(next_offset))
        for query_id in callbacks:
            await _answer(api, channel, query_id)
        return len(updates)


async def _answer(api: BotApi, channel: ChannelConfig, query_id: str) -> None:
    """Stop the button's progress indicator; a failure only leaves it spinning a few seconds longer."""
    try:
        await api.call("answerCallbackQuery", {"callback_query_id": query_id}, request_timeout=10.0)
    except BotApiError as exc:
        log.info("Telegram channel %s: callback query %s not answered: %s", channel.id, query_id, exc.reason)


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task

"""Carry out a flow's ``CallHttp``: one request with a hard timeout, never raising; the answer as ``HttpResult``.

Only JSON answers are mapped into vars; the body read is capped so a misbehaving endpoint cannot flood memory.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

from kommutator.bot.nodes.base import CallHttp, HttpResult
from kommutator.channels.base import SendError
from kommutator.common.jsonsafe import loads_json
from kommutator.net.guard import STRICT
from kommutator.net.http import GuardedClient

log = logging.getLogger(__name__)

MAX_BODY = 1_000_000  # bytes of an answer the bot reads


async def execute(call: CallHttp, *, client: httpx.AsyncClient | None = None) -> HttpResult:
    """Make the request; a timeout, a refused connection or a non-JSON answer comes back as ``error``."""
    own = client is None
    http = client or GuardedClient(STRICT, follow_redirects=False, trust_env=False)  # private targets refused
    try:
        kwargs: dict[str, Any] = {"headers": call.headers, "timeout": httpx.Timeout(call.timeout)}
        if call.body is not None:
            if isinstance(call.body, str):
                kwargs["content"] = call.body.encode()
            else:
                kwargs["json"] = call.body
        response = await http.request(call.method, call.url, **kwargs)
    except httpx.TimeoutException:
        return HttpResult(node=call.node, error=f"no answer within {call.timeout:g} s")
    except SendError as e:  # the guarded client refused the target (a private address not on the allow-list)
        log.warning("bot HTTP call %s %s refused: %s", call.method, call.url, e.reason)
        return HttpResult(node=call.node, error="refused: the address is private and not on the allow-list")
    except httpx.HTTPError as e:
        log.info("bot HTTP call %s %s failed: %s", call.method, call.url, e)
        return HttpResult(node=call.node, error=f"request failed: {type(e).__name__}")
    finally:
        if own:
            await http.aclose()
    raw = response.content[:MAX_BODY]
    body: Any = None
    if raw:
        try:
            body = loads_json(raw)  # bounded depth, finite numbers: the answer is kept in the session
        except ValueError:
            if 200 <= response.status_code < 300:
                return HttpResult(node=call.node, status=response.status_code, error="the answer is not JSON")
    return HttpResult(node=call.node, status=response.status_code, body=body)

"""``http_action``: call a CRM/ERP endpoint and put parts of its JSON answer into vars.

The node only describes the request (``CallHttp``); ``bot.http.execute`` makes it and the answer comes back
as an ``HttpResult``. A 2xx answer in which every mapped path is present goes to ``next``; anything else (an
error status, a timeout, a path missing) goes to ``on_error``, with ``http_status`` and ``http_error`` set.
``map`` paths are JSONPath-lite: ``$.order.status``, ``$.items[0].name``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, ClassVar, Literal

from pydantic import Field

from kommutator.bot.nodes.base import (
    CallHttp,
    Ctx,
    CustomerMessage,
    HttpResult,
    Node,
    Outcome,
    render,
    render_any,
)

_PATH = re.compile(r"^\$((?:\.[A-Za-z_][\w-]*|\[\d+\])*)$")
_STEP = re.compile(r"\.([A-Za-z_][\w-]*)|\[(\d+)\]")
_MISSING = object()


def json_path(data: Any, path: str) -> Any:
    """Return the value at ``path`` (``$.a.b[0]``) in ``data``, or a sentinel when absent."""
    m = _PATH.match(path)
    if not m:
        return _MISSING
    for key, index in _STEP.findall(m.group(1)):
        if key:
            if not isinstance(data, dict) or key not in data:
                return _MISSING
            data = data[key]
        else:
            i = int(index)
            if not isinstance(data, list) or i >= len(data):
                return _MISSING
            data = data[i]
    return data


def _strings(value: Any, where: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _strings(v, f"{where}[{i}]")


class HttpActionNode(Node):
    kind: ClassVar[str] = "http_action"
    type: Literal["http_action"]
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "GET"
    url: str = Field(min_length=1)
    headers: dict[str, str] = Field(default_factory=dict)
    body: Any = None
    timeout: float = Field(5.0, gt=0, le=30)
    map: dict[str, str] = Field(default_factory=dict)  # var -> JSONPath-lite into the answer
    next: str
    on_error: str

    def enter(self, ctx: Ctx) -> Outcome:
        values = ctx.values()
        call = CallHttp(node=ctx.node_id, method=self.method, url=render(self.url, values, url=True),
                        headers={k: render(v, values) for k, v in self.headers.items()},
                        body=render_any(self.body, values), timeout=self.timeout)
        return Outcome([call], wait=True)

    def receive(self, ctx: Ctx, event: CustomerMessage | HttpResult) -> Outcome:
        if not isinstance(event, HttpResult) or event.node != ctx.node_id:
            return Outcome(wait=True)  # the customer wrote while we wait for the answer: nothing to do yet
        ctx.state.vars["http_status"] = event.status
        if not event.ok:
            ctx.state.vars["http_error"] = event.error or f"HTTP {event.status}"
            ctx.note(f"{ctx.node_id}: request failed ({ctx.state.vars['http_error']})")
            return Outcome(goto=self.on_error)
        found = {var: json_path(event.body, path) for var, path in self.map.items()}
        missing = [self.map[var] for var, value in found.items() if value is _MISSING]
        if missing:
            ctx.state.vars["http_error"] = f"the answer has no {', '.join(missing)}"
            ctx.note(f"{ctx.node_id}: {ctx.state.vars['http_error']}")
            return Outcome(goto=self.on_error)
        ctx.state.vars.pop("http_error", None)
        ctx.state.vars.update(found)
        return Outcome(goto=self.next)

    def links(self) -> Iterator[tuple[str, str | None]]:
        yield "next", self.next
        yield "on_error", self.on_error

    def templates(self) -> Iterator[tuple[str, str]]:
        yield "url", self.url
        for k, v in self.headers.items():
            yield f"headers.{k}", v
        yield from _strings(self.body, "body")

    def assigns(self) -> set[str]:
        return {*self.map, "http_status", "http_error"}

    def check(self) -> Iterator[tuple[str, str]]:
        if not re.match(r"^(https?://|\{settings\.)", self.url):
            yield "url", "must start with http:// or https:// (or a {settings.*} base URL)."
        for var, path in self.map.items():
            if not _PATH.match(path):
                yield f"map.{var}", f"{path!r} is not a path such as $.order.status or $.items[0].name."
            if not re.match(r"^[A-Za-z_]\w*$", var):
                yield f"map.{var}", "a var name is letters, digits and underscores."

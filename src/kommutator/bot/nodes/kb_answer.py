"""``kb_answer``: answer from the knowledge base, then ask "did this help?".

The runner injects the search as ``Env.search(query, language) -> [KbHit]``; no answer (or no search) goes to
``on_miss``. "Yes" goes to ``on_yes``, "no" to ``on_no``."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import ClassVar, Literal

from kommutator.bot.nlu import MenuOption, match_option
from kommutator.bot.nodes.base import Ctx, CustomerMessage, HttpResult, KbHit, Node, Outcome, SendText, Text

log = logging.getLogger(__name__)

YES, NO = "yes", "no"
_YES_WORDS = ("да", "помогло", "спасибо", "ок", "yes", "yep", "helped", "thanks", "ok")
_NO_WORDS = ("нет", "не помогло", "no", "nope", "not really", "didn't help")


def ask_did_it_help(ctx: Ctx) -> SendText:
    return SendText(ctx.builtin("did_it_help"), ((YES, ctx.builtin("yes")), (NO, ctx.builtin("no"))))


def yes_or_no(ctx: Ctx, event: CustomerMessage) -> str | None:
    """YES, NO or None for an answer to "did this help?" (a button, or the words)."""
    if event.button in (YES, NO):
        return event.button
    found = match_option(event.text, [MenuOption(YES, ctx.builtin("yes"), _YES_WORDS),
                                      MenuOption(NO, ctx.builtin("no"), _NO_WORDS)],
                         "ru" if ctx.state.language == "ru" else "en")
    return found.id if found else None


class KbAnswerNode(Node):
    kind: ClassVar[str] = "kb_answer"
    waits: ClassVar[bool] = True
    type: Literal["kb_answer"]
    query: Text
    on_yes: str
    on_no: str
    on_miss: str

    def _ask(self, ctx: Ctx) -> SendText:
        return ask_did_it_help(ctx)

    def enter(self, ctx: Ctx) -> Outcome:
        query = ctx.say(self.query)
        hits: Sequence[KbHit] = ()
        if ctx.env.search is not None:
            try:
                hits = ctx.env.search(query, ctx.state.language)
            except Exception:  # the knowledge base failing must not stop the conversation
                log.exception("knowledge-base search failed for %r", query)
        if not hits:
            ctx.note(f"{ctx.node_id}: no knowledge-base answer for \u00ab{query}\u00bb")
            return Outcome(goto=self.on_miss)
        hit = hits[0]
        ctx.state.vars["kb_article"] = hit.title
        body = "\n".join(part for part in (hit.title, hit.text, hit.url) if part)
        return Outcome([SendText(body), self._ask(ctx)], wait=True)

    def receive(self, ctx: Ctx, event: CustomerMessage | HttpResult) -> Outcome:
        if not isinstance(event, CustomerMessage):
            return Outcome(wait=True)
        answer = yes_or_no(ctx, event)
        if answer is None:
            return Outcome([SendText(ctx.builtin("not_understood")), self._ask(ctx)], wait=True, understood=False)
        ctx.note(f"{ctx.node_id}: the answer \u00ab{ctx.state.vars.get('kb_article', '')}\u00bb "
                 + ("helped" if answer == YES else "did not help"))
        return Outcome(goto=self.on_yes if answer == YES else self.on_no)

    def links(self) -> Iterator[tuple[str, str | None]]:
        yield "on_yes", self.on_yes
        yield "on_no", self.on_no
        yield "on_miss", self.on_miss

    def texts(self) -> Iterator[tuple[str, Text]]:
        yield "query", self.query

    def assigns(self) -> set[str]:
        return {"kb_article"}

"""``menu``: offer options as buttons (numbered lines where the channel has none) and understand the answer:
a button id, a number, a label or synonym in free text (``bot.nlu.match_option``), or the option's intent."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from kommutator.bot.nlu import MenuOption, declines_human, match_option
from kommutator.bot.nodes.base import Ctx, CustomerMessage, HttpResult, Node, Outcome, Resolve, SendText, Text, pick
from kommutator.bot.nodes.kb_answer import NO, YES, ask_did_it_help, yes_or_no
from kommutator.common.text import words

log = logging.getLogger(__name__)
KB_CONFIDENCE = 0.6  # the share of a typed question's words an article must have to be offered as the answer



HUMAN_INTENT = "talk_to_agent"  # an option with this intent hands over to people


class Option(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1, max_length=64)
    label: Text
    synonyms: list[str] | dict[str, list[str]] = Field(default_factory=list)
    intent: str | None = None  # an intent of bot.nlu's model that also chooses this option
    next: str


def nlu_language(language: str) -> Literal["ru", "en"]:
    return "ru" if language == "ru" else "en"


class MenuNode(Node):
    kind: ClassVar[str] = "menu"
    waits: ClassVar[bool] = True
    type: Literal["menu"]
    text: Text
    options: list[Option]
    retry_text: Text | None = None
    # the intent model's confidence an option's intent needs (0–1); None: the model's calibrated threshold
    intent_confidence: float | None = Field(None, ge=0.0, le=1.0)
    # a typed question no option matches gets the best knowledge-base article when the match is confident
    kb_answers: bool = True
    kb_confidence: float = Field(KB_CONFIDENCE, ge=0.0, le=1.0)

    def _buttons(self, ctx: Ctx) -> tuple[tuple[str, str], ...]:
        return tuple((o.id, ctx.say(o.label)) for o in self.options)

    def enter(self, ctx: Ctx) -> Outcome:
        return Outcome([SendText(ctx.say(self.text), self._buttons(ctx))], wait=True)

    def choose(self, ctx: Ctx, event: CustomerMessage) -> Option | None:
        """Return the option the customer chose, or None."""
        option = self._choose(ctx, event)
        if option is not None and option.intent:
            ctx.hear(option.intent)  # the customer's need, however they chose (button, number, words, model)
        return option

    def _choose(self, ctx: Ctx, event: CustomerMessage) -> Option | None:
        by_id = {o.id: o for o in self.options}
        if event.button in by_id:
            return by_id[event.button]
        lang = ctx.state.language
        menu = [MenuOption(o.id, pick(o.label, lang, ctx.language_default), self._synonyms(o, lang))
                for o in self.options]
        found = match_option(event.text, menu, nlu_language(lang))
        option = by_id[found.id] if found is not None else self.by_intent(ctx, event.text)
        if option is not None and option.intent == HUMAN_INTENT and declines_human(event.text):
            return None  # "оператор не нужен": the word names the option, the customer declines it
        return option

    def by_intent(self, ctx: Ctx, text: str) -> Option | None:
        """The option whose intent the intent model finds in ``text`` (at the node's or the model's threshold)."""
        with_intent = {o.intent: o for o in self.options if o.intent}
        if not with_intent:
            return None
        intent, _ = ctx.classify(text, self.intent_confidence)
        return with_intent.get(intent) if intent else None

    def _answer_from_kb(self, ctx: Ctx, text: str) -> Outcome | None:
        """The best article for a typed question (two words or more), with "did this help?"; None if unsure."""
        if ctx.env.search is None or len(words(text)) < 2:
            return None
        try:
            hits = ctx.env.search(text, ctx.state.language)
        except Exception:  # the knowledge base failing must not stop the conversation
            log.exception("knowledge-base search failed for %r", text)
            return None
        if not hits or hits[0].score < self.kb_confidence:
            return None
        hit = hits[0]
        ctx.state.vars["kb_article"] = hit.title
        ctx.state.kb_offer = ctx.node_id
        ctx.note(f"{ctx.node_id}: answered \u00ab{text[:80]}\u00bb with the article \u00ab{hit.title}\u00bb")
        body = "\n".join(part for part in (hit.title, hit.text, hit.url) if part)
        return Outcome([SendText(body), ask_did_it_help(ctx)], wait=True)

    @staticmethod
    def _synonyms(option: Option, language: str) -> tuple[str, ...]:
        if isinstance(option.synonyms, list):
            return tuple(option.synonyms)
        return tuple(option.synonyms.get(language, ()))

    def receive(self, ctx: Ctx, event: CustomerMessage | HttpResult) -> Outcome:
        if not isinstance(event, CustomerMessage):
            return Outcome(wait=True)
        if ctx.state.kb_offer == ctx.node_id:
            ctx.state.kb_offer = ""
            answer = yes_or_no(ctx, event)
            if answer == YES:  # contained: the bot answered the question itself
                ctx.note(f"{ctx.node_id}: the answer \u00ab{ctx.state.vars.get('kb_article', '')}\u00bb helped")
                return Outcome([SendText(ctx.builtin("kb_helped")),
                                Resolve(reason="answered from the knowledge base", summary="; ".join(ctx.state.trail))],
                               finish="resolved")
            if answer == NO:
                ctx.note(f"{ctx.node_id}: the answer \u00ab{ctx.state.vars.get('kb_article', '')}\u00bb did not help")
                return Outcome([SendText(ctx.builtin("kb_not_helped"), self._buttons(ctx))], wait=True)
            # neither: the customer went on with something else; read it as an answer to the menu
        option = self.choose(ctx, event)
        if option is None and self.kb_answers and (offer := self._answer_from_kb(ctx, event.text)):
            return offer
        if option is None:
            again = ctx.say(self.retry_text) if self.retry_text else ctx.builtin("not_understood")
            return Outcome([SendText(again, self._buttons(ctx))], wait=True, understood=False)
        ctx.note(f"{ctx.node_id}: chose \u00ab{pick(option.label, ctx.state.language, ctx.language_default)}\u00bb")
        return Outcome(goto=option.next)

    def links(self) -> Iterator[tuple[str, str | None]]:
        for i, o in enumerate(self.options):
            yield f"options[{i}].next", o.next

    def texts(self) -> Iterator[tuple[str, Text]]:
        yield "text", self.text
        if self.retry_text is not None:
            yield "retry_text", self.retry_text
        for i, o in enumerate(self.options):
            yield f"options[{i}].label", o.label

    def intents(self) -> Iterator[tuple[str, str]]:
        for i, o in enumerate(self.options):
            if o.intent:
                yield f"options[{i}].intent", o.intent

    def check(self) -> Iterator[tuple[str, str]]:
        if not self.options:
            yield "options", "a menu needs at least one option."
        seen: set[str] = set()
        for i, o in enumerate(self.options):
            if o.id in seen:
                yield f"options[{i}].id", f"option id {o.id!r} is used twice in this menu."
            seen.add(o.id)

"""/api/v1/conversations/{id}/suggestions: reply suggestions for the agent, and what the agent did with them."""

from __future__ import annotations

from fastapi import APIRouter

from kommutator.assist import actions
from kommutator.assist.rank import Candidate
from kommutator.assist.schemas import FeedbackResult, SuggestionFeedback, SuggestionList, SuggestionRead
from kommutator.assist.service import suggester_of
from kommutator.auth.deps import CurrentPrincipal, RuntimeDep
from kommutator.common.routes import SafeRoute
from kommutator.common.schemas import Id
from kommutator.conversations.queries import get_conversation

router = APIRouter(tags=["assist"], route_class=SafeRoute)


def _read(c: Candidate) -> SuggestionRead:
    return SuggestionRead(key=c.key, source=c.source, title=c.title, text=c.text, matched=c.matched,
                          times_sent=c.times_sent, source_id=c.source_id,
                          url=f"/help/{c.source_id}" if c.source == "article" else None,
                          similarity=round(c.similarity, 4), score=round(c.score, 4))


@router.get("/conversations/{conversation_id}/suggestions", response_model=SuggestionList)
async def list_suggestions(rt: RuntimeDep, principal: CurrentPrincipal, conversation_id: Id) -> SuggestionList:
    """Up to three replies for the customer's latest messages: canned responses, knowledge-base articles (plain
    text) and replies agents sent before in similar situations, each with the words that matched."""
    async with rt.db.read() as s:
        conv = await get_conversation(s, principal, conversation_id)
    query, found = await suggester_of(rt).suggest(principal, conv)
    return SuggestionList(conversation_id=conv.id, customer_text=query, items=[_read(c) for c in found])


@router.post("/conversations/{conversation_id}/suggestions/feedback", response_model=FeedbackResult)
async def record_suggestion_feedback(rt: RuntimeDep, principal: CurrentPrincipal, conversation_id: Id,
                                     body: SuggestionFeedback) -> FeedbackResult:
    """Tell what happened to suggestions (shown, inserted, sent); it weighs their ranking from now on. For
    ``sent``, the reply counts as sent unedited when its text is the inserted text (case, spacing and
    punctuation aside)."""
    recorded = await rt.db.write(lambda tx: actions.do_record_feedback(tx, principal, conversation_id, body))
    return FeedbackResult(recorded=recorded)

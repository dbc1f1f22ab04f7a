"""Wire formats of suggestions and of the feedback the workspace sends about them."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from kommutator.common.schemas import MAX_ID, Strict

KEY_PATTERN = r"^(canned:[1-9][0-9]{0,15}|article:[1-9][0-9]{0,15}|reply:[0-9a-f]{16})$"
Source = Literal["canned", "article", "reply"]


class SuggestionRead(BaseModel):
    key: str = Field(description="Stable id of the suggestion: canned:<id>, article:<id> or reply:<hash>; "
                                 "send it back in feedback")
    source: Source = Field(description="canned: a canned response; article: a knowledge-base article (plain "
                                       "text); reply: what agents sent before in similar situations")
    title: str = Field(description="The canned response's or article's title; empty for a past reply")
    text: str = Field(description="Plain text to put into the reply box, placeholders filled in")
    matched: list[str] = Field(description="The customer's words that matched (why it is suggested)")
    times_sent: int = Field(description="How often agents sent this reply before (past replies)")
    source_id: int | None = Field(description="The canned response's or article's id")
    url: str | None = Field(description="The article on the public help centre")
    similarity: float = Field(description="How close the match is, 0–1")
    score: float = Field(description="Similarity weighed by how often agents took it when shown; best first")


class SuggestionList(BaseModel):
    conversation_id: int
    customer_text: str = Field(description="The customer's messages the suggestions answer (empty: nothing to "
                                           "answer, no suggestions)")
    items: list[SuggestionRead] = Field(description="At most three, best first")


SuggestionKey = Annotated[str, Field(pattern=KEY_PATTERN, description="A suggestion's key, as listed")]


class ShownFeedback(Strict):
    action: Literal["shown"] = Field(description="These suggestions were on the agent's screen")
    keys: list[SuggestionKey] = Field(min_length=1, max_length=3, description="At most three; repeats count once")


class InsertedFeedback(Strict):
    action: Literal["inserted"] = Field(description="The agent put this suggestion into the reply box")
    key: SuggestionKey


class SentFeedback(Strict):
    action: Literal["sent"] = Field(description="The reply holding the inserted suggestion went out; whether it was "
                                                "edited is decided here, by comparing the texts")
    key: SuggestionKey
    message_id: int = Field(ge=1, le=MAX_ID, description="The message the agent sent (their own reply here)")
    inserted_text: str = Field(max_length=20000, description="The text the suggestion put into the reply box")


# A plain union (Strict's before-validators rule out a pydantic discriminator); ``action`` tells them apart.
SuggestionFeedback = ShownFeedback | InsertedFeedback | SentFeedback


class FeedbackResult(BaseModel):
    recorded: list[str] = Field(description="What was recorded for each key, in order: shown, inserted, "
                                            "sent_unedited or sent_edited")

"""Wire formats of suggestions and of the feedback the workspace sends about them."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, Field, model_validator

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


class SuggestionFeedback(Strict):
    action: Literal["shown", "inserted", "sent"] = Field(
        description="shown: these suggestions were on screen; inserted: the agent put one into the reply box; "
                    "sent: the reply with the inserted suggestion went out (edited or not is decided here)")
    keys: list[str] = Field(min_length=1, max_length=3, description="Suggestion keys (one for inserted and sent)")
    message_id: int | None = Field(None, ge=1, le=MAX_ID, description="sent: the message the agent sent")
    inserted_text: str | None = Field(None, max_length=20000,
                                      description="sent: the text the suggestion put into the reply box")

    @model_validator(mode="after")
    def _shape(self) -> SuggestionFeedback:

        for key in self.keys:
            if not re.match(KEY_PATTERN, key):
                raise ValueError(f"keys: {key!r} is not a suggestion key (canned:<id>, article:<id>, reply:<hash>)")
        if len(set(self.keys)) != len(self.keys):
            raise ValueError("keys: each key once")
        if self.action != "shown" and len(self.keys) != 1:
            raise ValueError(f"keys: '{self.action}' is about one suggestion; send exactly one key")
        if self.action == "sent" and (self.message_id is None or self.inserted_text is None):
            raise ValueError("'sent' needs message_id (the message sent) and inserted_text (what was inserted)")
        if self.action != "sent" and (self.message_id is not None or self.inserted_text is not None):
            raise ValueError("message_id and inserted_text go only with 'sent'")
        return self


class FeedbackResult(BaseModel):
    recorded: list[str] = Field(description="What was recorded for each key, in order: shown, inserted, "
                                            "sent_unedited or sent_edited")

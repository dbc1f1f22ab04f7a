"""Wire formats of the bot's intents: the business's intents (CRUD), trained models, the validation report."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import Field, field_validator

from kommutator.common.schemas import ReadModel, Strict

INTENT_NAME = r"^[a-z][a-z0-9_]{0,63}$"
Phrase = Annotated[str, Field(min_length=1, max_length=300)]
PerLanguage = dict[Literal["ru", "en"], list[Phrase]]
MAX_EXAMPLES = 500  # per language and intent


def _clean(value: dict[str, list[str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for lang, phrases in value.items():
        if len(phrases) > MAX_EXAMPLES:
            raise ValueError(f"at most {MAX_EXAMPLES} phrases per language ({lang} has {len(phrases)})")
        kept = list(dict.fromkeys(p.strip() for p in phrases if p.strip()))
        if kept:
            out[lang] = kept
    return out


class IntentCreate(Strict):
    name: str = Field(pattern=INTENT_NAME, description="Lower-case letters, digits and _; used in flows")
    description: str = Field("", max_length=2000)
    examples: PerLanguage = Field(default_factory=dict, description='Example phrases: {"ru": [...], "en": [...]}')
    synonyms: PerLanguage = Field(default_factory=dict,
                                  description="Short words or phrases that name the intent (also trained on)")

    _examples = field_validator("examples", "synonyms")(classmethod(lambda cls, v: _clean(v)))


class IntentUpdate(Strict):
    name: str | None = Field(None, pattern=INTENT_NAME)
    description: str | None = Field(None, max_length=2000)
    examples: PerLanguage | None = None
    synonyms: PerLanguage | None = None

    _examples = field_validator("examples", "synonyms")(
        classmethod(lambda cls, v: None if v is None else _clean(v)))


class IntentRead(ReadModel):
    id: int | None = Field(description="None for a shipped intent (read-only)")
    name: str
    description: str
    builtin: bool = Field(description="Shipped with the product (its examples are in the package)")
    examples: dict[str, list[str]]
    synonyms: dict[str, list[str]]
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None


class IntentList(ReadModel):
    items: list[IntentRead]
    model_version: int | None = Field(description="The intent set version the bot uses now (None: none trained yet)")
    training: bool = Field(description="A newer version is waiting to be trained or training")


class IntentPerformance(ReadModel):
    intent: str
    precision: float
    recall: float


class ConfusedPair(ReadModel):
    expected: str
    predicted: str
    count: int


class IntentModelRead(ReadModel):
    version: int
    language: str
    status: str = Field(description="pending, ready, failed or superseded")
    error: str
    created_at: dt.datetime
    trained_at: dt.datetime | None
    intents: int = 0
    examples: int = 0
    threshold: float | None = None
    train_seconds: float | None = None


class IntentModelList(ReadModel):
    items: list[IntentModelRead]


class IntentReport(ReadModel):
    """Cross-validation on the training examples of the newest trained model for a language."""

    version: int
    language: str
    trained_at: dt.datetime | None
    threshold: float = Field(description="Confidence below which a message is out of scope")
    in_scope_accuracy: float = Field(description="Held-out examples given the right intent above the threshold")
    withheld_rejection: float = Field(description="Messages of intents withheld from training that were rejected")
    per_intent: list[IntentPerformance]
    confused: list[ConfusedPair] = Field(description="Intents most often mistaken for one another, worst first")


class IntentTrainRequest(Strict):
    pass


class IntentPredictRequest(Strict):
    text: str = Field(min_length=1, max_length=1000)
    language: Literal["ru", "en"] = "ru"


class IntentGuess(ReadModel):
    intent: str
    probability: float


class IntentPrediction(ReadModel):
    intent: str | None = Field(description="None: out of scope (below the threshold)")
    confidence: float
    threshold: float
    version: int | None
    top: list[IntentGuess]

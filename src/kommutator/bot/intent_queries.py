"""Reads of the bot's intents: the intent set a model trains on, the names flows may use, trained models."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from kommutator.bot.models import BotIntent, BotIntentModel
from kommutator.bot.nlu import DEFAULT_INTENTS, LANGUAGES, load_examples


async def custom_intents(s: AsyncSession) -> list[BotIntent]:
    return list((await s.execute(select(BotIntent).order_by(BotIntent.name))).scalars())


async def known_intents(s: AsyncSession) -> set[str]:
    """Every intent name a flow may use: the shipped ones and the business's."""
    return set(DEFAULT_INTENTS) | set((await s.execute(select(BotIntent.name))).scalars())


def training_set(custom: Sequence[BotIntent], language: str, *, shipped: bool = True) -> dict[str, list[str]]:
    """Phrases per intent for one language: the shipped examples (unless ``shipped`` is false: the setting
    ``bot_shipped_intents``), then each custom intent's examples and synonyms (a custom intent with no phrases
    in this language is left out of its model)."""
    out = ({name: list(phrases) for name, phrases in load_examples(language).intents.items()}  # type: ignore[arg-type]
           if shipped else {})
    for intent in custom:
        phrases = [*intent.examples.get(language, []), *intent.synonyms.get(language, [])]
        if phrases:
            out[intent.name] = list(dict.fromkeys(phrases))
    return out


async def training_sets(s: AsyncSession, *, shipped: bool = True) -> dict[str, dict[str, list[str]]]:
    custom = await custom_intents(s)
    return {language: training_set(custom, language, shipped=shipped) for language in LANGUAGES}


async def latest_version(s: AsyncSession) -> int:
    return int(await s.scalar(select(func.max(BotIntentModel.version))) or 0)


async def ready_models(s: AsyncSession) -> dict[str, BotIntentModel]:
    """The newest ready model per language (with its blob)."""
    out: dict[str, BotIntentModel] = {}
    rows = await s.execute(select(BotIntentModel).where(BotIntentModel.status == "ready")
                           .order_by(BotIntentModel.version.desc()))
    for row in rows.scalars():
        out.setdefault(row.language, row)
    return out


async def model_rows(s: AsyncSession, limit: int = 50) -> list[dict[str, Any]]:
    """Model versions newest first, without blobs."""
    cols = (BotIntentModel.version, BotIntentModel.language, BotIntentModel.status, BotIntentModel.error,
            BotIntentModel.created_at, BotIntentModel.trained_at, BotIntentModel.report)
    rows = await s.execute(select(*cols).order_by(BotIntentModel.version.desc(), BotIntentModel.language)
                           .limit(limit))
    return [dict(r._mapping) for r in rows]


async def pending_version(s: AsyncSession) -> int | None:
    """The newest version still waiting to be trained, if any."""
    v = await s.scalar(select(func.max(BotIntentModel.version)).where(BotIntentModel.status == "pending"))
    return int(v) if v is not None else None

"""Create, change and delete the business's intents; request and store trained intent models.

Every change to the intents asks for a new model version (one ``pending`` row per language); the trainer
(``bot/intent_training.py``) trains it in the background. A flow that names an intent keeps it from being
deleted or renamed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select, update

from kommutator.audit.actions import do_audit
from kommutator.auth.principal import Principal
from kommutator.bot.intent_queries import latest_version
from kommutator.bot.intent_schemas import IntentCreate, IntentUpdate
from kommutator.bot.models import BotFlow, BotIntent, BotIntentModel
from kommutator.bot.nlu import DEFAULT_INTENTS, LANGUAGES
from kommutator.clock import now
from kommutator.db import Tx
from kommutator.errors import ProblemError, not_found


def flow_intents(definition: dict[str, Any]) -> set[str]:
    """The intent names a flow definition uses (menu options and condition rules)."""
    found: set[str] = set()
    for node in (definition.get("nodes") or {}).values():
        if not isinstance(node, dict):
            continue
        for option in node.get("options") or []:
            if isinstance(option, dict) and isinstance(option.get("intent"), str):
                found.add(option["intent"])
        for branch in node.get("branches") or []:
            for rule in (branch.get("when") or []) if isinstance(branch, dict) else []:
                if isinstance(rule, dict) and isinstance(rule.get("intent"), str):
                    found.add(rule["intent"])
    return found


async def _flows_using(tx: Tx, name: str) -> list[str]:
    rows = await tx.session.execute(select(BotFlow.name, BotFlow.definition))
    return [flow for flow, defn in rows.all() if name in flow_intents(defn or {})]


async def _check_name(tx: Tx, name: str, intent_id: int | None = None) -> None:
    if name in DEFAULT_INTENTS:
        raise ProblemError(409, "intent_name_taken", f"name: {name!r} is a shipped intent; choose another name.")
    other = await tx.session.scalar(select(BotIntent.id).where(BotIntent.name == name))
    if other is not None and other != intent_id:
        raise ProblemError(409, "intent_name_taken", f"name: an intent named {name!r} exists already.")


def _need_phrases(examples: Mapping[Any, list[str]], synonyms: Mapping[Any, list[str]]) -> None:
    if not any(examples.get(lang) or synonyms.get(lang) for lang in LANGUAGES):
        raise ProblemError(422, "intent_examples_required", "examples: give at least one example phrase or synonym "
                           "(Russian or English); a few dozen per language make the intent reliable.")


def _plain(per_language: Mapping[Any, list[str]]) -> dict[str, list[str]]:
    return {str(k): list(v) for k, v in per_language.items()}


async def do_request_training(tx: Tx, principal: Principal | None) -> int:
    """Ask for the next model version (one pending row per language); older pending versions are superseded."""
    await tx.session.execute(update(BotIntentModel).where(BotIntentModel.status == "pending")
                             .values(status="superseded"))
    version = await latest_version(tx.session) + 1
    ts = now()
    tx.session.add_all([BotIntentModel(version=version, language=lang, status="pending", report={}, error="",
                                       requested_by_id=principal.user_id if principal else None, created_at=ts)
                        for lang in LANGUAGES])
    await tx.session.flush()
    return version


async def do_create_intent(tx: Tx, principal: Principal, data: IntentCreate) -> BotIntent:
    await _check_name(tx, data.name)
    _need_phrases(data.examples, data.synonyms)
    ts = now()
    intent = BotIntent(name=data.name, description=data.description, examples=_plain(data.examples),
                       synonyms=_plain(data.synonyms), created_by_id=principal.user_id,
                       updated_by_id=principal.user_id, created_at=ts, updated_at=ts)
    tx.session.add(intent)
    await tx.session.flush()
    do_audit(tx, principal, "bot_intent.created", "bot_intent", intent.id, name=data.name)
    await do_request_training(tx, principal)
    return intent


async def do_update_intent(tx: Tx, principal: Principal, intent_id: int, data: IntentUpdate) -> BotIntent:
    intent = await tx.session.get(BotIntent, intent_id, with_for_update=True)
    if intent is None:
        raise not_found("bot_intent", intent_id)
    if data.name is not None and data.name != intent.name:
        await _check_name(tx, data.name, intent.id)
        if using := await _flows_using(tx, intent.name):
            raise ProblemError(409, "intent_in_use", f"name: flow {using[0]!r} uses intent {intent.name!r}; change "
                               "the flow first.", flows=using)
        intent.name = data.name
    if data.description is not None:
        intent.description = data.description
    if data.examples is not None:
        intent.examples = _plain(data.examples)
    if data.synonyms is not None:
        intent.synonyms = _plain(data.synonyms)
    _need_phrases(intent.examples, intent.synonyms)
    intent.updated_by_id, intent.updated_at = principal.user_id, now()
    await tx.session.flush()
    do_audit(tx, principal, "bot_intent.updated", "bot_intent", intent.id, name=intent.name)
    await do_request_training(tx, principal)
    return intent


async def do_delete_intent(tx: Tx, principal: Principal, intent_id: int) -> None:
    intent = await tx.session.get(BotIntent, intent_id)
    if intent is None:
        raise not_found("bot_intent", intent_id)
    if using := await _flows_using(tx, intent.name):
        raise ProblemError(409, "intent_in_use", f"flow {using[0]!r} uses intent {intent.name!r}; change the flow "
                           "first.", flows=using)
    await tx.session.delete(intent)
    do_audit(tx, principal, "bot_intent.deleted", "bot_intent", intent_id, name=intent.name)
    await do_request_training(tx, principal)


async def do_store_model(tx: Tx, version: int, language: str, *, blob: bytes | None, report: dict[str, Any],
                         error: str = "") -> bool:
    """Store a trained model (or the failure); False when the version was superseded meanwhile."""
    row = await tx.session.scalar(select(BotIntentModel).where(BotIntentModel.version == version,
                                                               BotIntentModel.language == language)
                                  .with_for_update())
    if row is None or row.status != "pending":
        return False
    row.status = "ready" if blob is not None else "failed"
    row.model, row.report, row.error, row.trained_at = blob, report, error[:2000], now()
    return True

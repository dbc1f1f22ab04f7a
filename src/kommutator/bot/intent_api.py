"""/api/v1/bot/intents: the business's intents (CRUD; administrators write, agents read), trained model
versions, the cross-validation report and a try-it prediction."""

from __future__ import annotations

from fastapi import APIRouter, Query, Response

from kommutator.auth.deps import CurrentPrincipal, RuntimeDep
from kommutator.bot.intent_actions import do_create_intent, do_delete_intent, do_request_training, do_update_intent
from kommutator.bot.intent_queries import custom_intents, model_rows, pending_version
from kommutator.bot.intent_schemas import (
    ConfusedPair,
    IntentCreate,
    IntentGuess,
    IntentList,
    IntentModelList,
    IntentModelRead,
    IntentPerformance,
    IntentPrediction,
    IntentPredictRequest,
    IntentRead,
    IntentReport,
    IntentUpdate,
)
from kommutator.bot.intent_training import intents_of
from kommutator.bot.models import BotIntent, BotIntentModel
from kommutator.bot.nlu import DEFAULT_INTENTS, LANGUAGES, load_examples
from kommutator.common.routes import SafeRoute
from kommutator.common.schemas import Id
from kommutator.errors import ProblemError, not_found

router = APIRouter(tags=["bot"], route_class=SafeRoute)


def _read(intent: BotIntent) -> IntentRead:
    return IntentRead(id=intent.id, name=intent.name, description=intent.description, builtin=False,
                      examples=intent.examples, synonyms=intent.synonyms, created_at=intent.created_at,
                      updated_at=intent.updated_at)


def _builtin() -> list[IntentRead]:
    shipped = {lang: load_examples(lang).intents for lang in LANGUAGES}
    return [IntentRead(id=None, name=name, description="", builtin=True,
                       examples={lang: shipped[lang].get(name, []) for lang in LANGUAGES}, synonyms={})
            for name in DEFAULT_INTENTS]


@router.get("/bot/intents", response_model=IntentList)
async def list_intents(rt: RuntimeDep, principal: CurrentPrincipal,
                       builtin: bool = Query(True, description="Include the shipped intents")) -> IntentList:
    """The intents flows may use: the shipped ones (read-only) and the business's own."""
    async with rt.db.read() as s:
        custom = await custom_intents(s)
        pending = await pending_version(s)
    registry = intents_of(rt)
    shipped = builtin and rt.settings.bot_shipped_intents
    return IntentList(items=(_builtin() if shipped else []) + [_read(i) for i in custom],
                      model_version=registry.version("ru") or registry.version("en"), training=pending is not None)


@router.post("/bot/intents", response_model=IntentRead, status_code=201)
async def create_intent(rt: RuntimeDep, principal: CurrentPrincipal, body: IntentCreate) -> IntentRead:
    """Define an intent (administrators); the bot's model is retrained in the background."""
    principal.require_admin()
    intent = await rt.db.write(lambda tx: do_create_intent(tx, principal, body))
    return _read(intent)


@router.get("/bot/intents/{intent_id:int}", response_model=IntentRead)
async def get_intent(rt: RuntimeDep, principal: CurrentPrincipal, intent_id: Id) -> IntentRead:
    async with rt.db.read() as s:
        intent = await s.get(BotIntent, intent_id)
    if intent is None:
        raise not_found("bot_intent", intent_id)
    return _read(intent)


@router.put("/bot/intents/{intent_id:int}", response_model=IntentRead)
async def update_intent(rt: RuntimeDep, principal: CurrentPrincipal, intent_id: Id, body: IntentUpdate) -> IntentRead:
    """Change an intent (fields left out stay); renaming one a flow uses is refused (409 `intent_in_use`)."""
    principal.require_admin()
    intent = await rt.db.write(lambda tx: do_update_intent(tx, principal, intent_id, body))
    return _read(intent)


@router.delete("/bot/intents/{intent_id:int}", status_code=204)
async def delete_intent(rt: RuntimeDep, principal: CurrentPrincipal, intent_id: Id) -> Response:
    """Delete an intent no flow uses (409 `intent_in_use` otherwise)."""
    principal.require_admin()
    await rt.db.write(lambda tx: do_delete_intent(tx, principal, intent_id))
    return Response(status_code=204)


def _model(row: dict[str, object]) -> IntentModelRead:
    report = row.get("report") or {}
    assert isinstance(report, dict)
    return IntentModelRead(version=row["version"], language=row["language"], status=row["status"],
                           error=row["error"], created_at=row["created_at"], trained_at=row["trained_at"],
                           intents=report.get("intents", 0), examples=report.get("examples", 0),
                           threshold=report.get("threshold"), train_seconds=report.get("train_seconds"))


@router.get("/bot/intents/models", response_model=IntentModelList)
async def list_intent_models(rt: RuntimeDep, principal: CurrentPrincipal) -> IntentModelList:
    """Trained model versions, newest first: pending, ready, failed or superseded."""
    async with rt.db.read() as s:
        rows = await model_rows(s)
    return IntentModelList(items=[_model(r) for r in rows])


@router.post("/bot/intents/train", response_model=IntentModelList, status_code=202)
async def train_intents(rt: RuntimeDep, principal: CurrentPrincipal) -> IntentModelList:
    """Ask for a new model version now (it is also asked for on every change); trained in the background."""
    principal.require_admin()
    version = await rt.db.write(lambda tx: do_request_training(tx, principal))
    async with rt.db.read() as s:
        rows = await model_rows(s)
    return IntentModelList(items=[_model(r) for r in rows if r["version"] == version])


@router.get("/bot/intents/report", response_model=IntentReport)
async def intent_report(rt: RuntimeDep, principal: CurrentPrincipal,
                        language: str = Query("ru", pattern="^(ru|en)$")) -> IntentReport:
    """Per-intent precision and recall by cross-validation on the examples, and the most-confused pairs, of
    the newest trained model for ``language`` (404 `intent_model_not_found` before the first one)."""
    from sqlalchemy import select

    async with rt.db.read() as s:
        row = (await s.execute(
            select(BotIntentModel.version, BotIntentModel.trained_at, BotIntentModel.report)
            .where(BotIntentModel.status == "ready", BotIntentModel.language == language)
            .order_by(BotIntentModel.version.desc()).limit(1))).first()
    if row is None:
        raise ProblemError(404, "intent_model_not_found", f"No intent model for {language!r} is trained yet; "
                           "training runs in the background after a change.")
    version, trained_at, report = row
    return IntentReport(version=version, language=language, trained_at=trained_at,
                        threshold=report.get("threshold", 0.0),
                        in_scope_accuracy=report.get("in_scope_accuracy", 0.0),
                        withheld_rejection=report.get("withheld_rejection", 0.0),
                        per_intent=[IntentPerformance(**p) for p in report.get("per_intent", [])],
                        confused=[ConfusedPair(**c) for c in report.get("confused", [])])


@router.post("/bot/intents/predict", response_model=IntentPrediction)
async def predict_intent(rt: RuntimeDep, principal: CurrentPrincipal, body: IntentPredictRequest) -> IntentPrediction:
    """What the bot's current model makes of a phrase (503 `intent_model_not_ready` before the first model)."""
    registry = intents_of(rt)
    model = registry.get(body.language)
    if model is None:
        raise ProblemError(503, "intent_model_not_ready", "The intent model is not trained yet; try again shortly.")
    prediction = model.predict(body.text)
    probs = sorted(model.probabilities(body.text).items(), key=lambda kv: -kv[1])[:3]
    return IntentPrediction(intent=prediction.intent, confidence=round(prediction.confidence, 4),
                            threshold=round(model.threshold, 4), version=registry.version(body.language),
                            top=[IntentGuess(intent=k, probability=round(v, 4)) for k, v in probs])

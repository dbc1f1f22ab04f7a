"""/api/v1/bot: flows (JSON or YAML, validated on save, versioned, attached to channels) and bot sessions."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

import yaml
from fastapi import APIRouter, Path, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kommutator.auth.deps import CurrentPrincipal, RuntimeDep
from kommutator.bot.actions import definition_of, do_create_flow, do_delete_flow, do_update_flow
from kommutator.bot.flow import Problem, load_default, validate_flow
from kommutator.bot.intent_queries import known_intents
from kommutator.bot.models import BotFlow, BotFlowChannel, BotFlowVersion, BotSession
from kommutator.bot.schemas import (
    BotSessionRead,
    FlowCreate,
    FlowList,
    FlowProblem,
    FlowRead,
    FlowSummary,
    FlowUpdate,
    FlowValidate,
    FlowVersionList,
    FlowVersionRead,
    ValidationResult,
)
from kommutator.common.jsonsafe import UnsafeInput, loads_json, loads_yaml
from kommutator.common.routes import SafeRoute
from kommutator.common.schemas import Id
from kommutator.conversations.queries import get_conversation
from kommutator.errors import ProblemError, not_found

# Version numbers are 32-bit columns: a larger number is refused as bad input, never sent to the database.
VersionNumber = Annotated[int, Path(ge=1, le=2**31 - 1, description="A flow version number")]

router = APIRouter(tags=["bot"], route_class=SafeRoute)
M = TypeVar("M", bound=BaseModel)
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")


def _body_schema(model: type[BaseModel]) -> dict[str, Any]:
    # The body is parsed by hand (JSON or YAML), so FastAPI does not list the model: inline its schema.
    schema = {"schema": model.model_json_schema(ref_template="#/components/schemas/{model}")}
    return {"requestBody": {"required": True, "content": {"application/json": schema, "application/yaml": schema}}}


async def _parse(request: Request, model: type[M]) -> M:
    """The body as ``model``, from JSON or (Content-Type: application/yaml) YAML."""
    raw = await request.body()
    kind = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    try:
        if kind in YAML_TYPES:
            data = loads_yaml(raw.decode("utf-8")) if raw.strip() else None
        elif kind in ("application/json", ""):
            data = loads_json(raw) if raw.strip() else None
        else:
            raise ProblemError(415, "unsupported_media_type", "Send the flow as application/json or application/yaml.")
    except UnsafeInput:  # too deep, too large, NaN: its own code and field
        raise
    except (ValueError, yaml.YAMLError) as e:
        raise ProblemError(400, "invalid_body", f"The request body is not valid {kind.split('/')[-1].upper()}: "
                           f"{str(e).splitlines()[0]}") from e
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise RequestValidationError([{**err, "loc": ("body", *err["loc"])} for err in e.errors(include_url=False)]) \
            from e


def _problems(problems: list[Problem]) -> list[FlowProblem]:
    return [FlowProblem(where=p.where, message=p.message, level=p.level) for p in problems]


async def _channels(s: AsyncSession, flow_ids: list[int]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {i: [] for i in flow_ids}
    rows = await s.execute(select(BotFlowChannel.flow_id, BotFlowChannel.channel_id)
                           .where(BotFlowChannel.flow_id.in_(flow_ids)).order_by(BotFlowChannel.channel_id))
    for flow_id, channel_id in rows.all():
        out[flow_id].append(channel_id)
    return out


async def _read(rt: RuntimeDep, flow_id: int, warnings: list[Problem] | None = None) -> FlowRead:
    async with rt.db.read() as s:
        flow = await s.get(BotFlow, flow_id)
        if flow is None:
            raise not_found("bot_flow", flow_id)
        channels = await _channels(s, [flow.id])
    if warnings is None:
        warnings = [p for p in validate_flow(flow.definition) if p.level == "warning"]
    return FlowRead.model_validate(flow).model_copy(update={"channel_ids": channels[flow.id],
                                                            "warnings": _problems(warnings)})


@router.get("/bot/flows", response_model=FlowList)
async def list_flows(rt: RuntimeDep, principal: CurrentPrincipal) -> FlowList:
    """Every flow with its current version and channels (agents and up)."""
    async with rt.db.read() as s:
        flows = list((await s.execute(select(BotFlow).order_by(BotFlow.name))).scalars())
        channels = await _channels(s, [f.id for f in flows])
    return FlowList(items=[FlowSummary.model_validate(f).model_copy(update={"channel_ids": channels[f.id]})
                           for f in flows])


@router.post("/bot/flows", response_model=FlowRead, status_code=201, openapi_extra=_body_schema(FlowCreate))
async def create_flow(rt: RuntimeDep, principal: CurrentPrincipal, request: Request) -> FlowRead:
    """Save a flow (supervisors and administrators); 422 `invalid_flow` lists every problem with its place."""
    principal.require_supervisor()
    body = await _parse(request, FlowCreate)
    flow, warnings = await rt.db.write(lambda tx: do_create_flow(tx, principal, body))
    return await _read(rt, flow.id, warnings)


@router.post("/bot/flows/validate", response_model=ValidationResult, openapi_extra=_body_schema(FlowValidate))
async def validate(rt: RuntimeDep, principal: CurrentPrincipal, request: Request) -> ValidationResult:
    """Check a definition without saving it: every error and warning with its place."""
    principal.require_supervisor()
    body = await _parse(request, FlowValidate)
    defn = definition_of(body.definition, body.source)
    if isinstance(defn, dict):
        defn = {"name": "draft", "version": 1, **defn}
    async with rt.db.read() as s:
        intents = await known_intents(s)
    problems = validate_flow(defn, intents)
    return ValidationResult(valid=not any(p.level == "error" for p in problems), problems=_problems(problems))


@router.get("/bot/default-flow")
async def default_flow(principal: CurrentPrincipal) -> dict[str, Any]:
    """The shipped default flow (Russian and English), as a starting point for a new one."""
    return load_default()


@router.get("/bot/flows/{flow_id:int}", response_model=FlowRead)
async def get_flow(rt: RuntimeDep, principal: CurrentPrincipal, flow_id: Id) -> FlowRead:
    return await _read(rt, flow_id)


@router.put("/bot/flows/{flow_id:int}", response_model=FlowRead, openapi_extra=_body_schema(FlowUpdate))
async def update_flow(rt: RuntimeDep, principal: CurrentPrincipal, flow_id: Id, request: Request) -> FlowRead:
    """Change a flow; a changed definition is saved as a new version. Fields left out stay as they are."""
    principal.require_supervisor()
    body = await _parse(request, FlowUpdate)
    flow, warnings = await rt.db.write(lambda tx: do_update_flow(tx, principal, flow_id, body))
    return await _read(rt, flow.id, warnings)


@router.delete("/bot/flows/{flow_id:int}", status_code=204)
async def delete_flow(rt: RuntimeDep, principal: CurrentPrincipal, flow_id: Id) -> Response:
    principal.require_supervisor()
    await rt.db.write(lambda tx: do_delete_flow(tx, principal, flow_id))
    return Response(status_code=204)


@router.get("/bot/flows/{flow_id:int}/versions", response_model=FlowVersionList)
async def list_versions(rt: RuntimeDep, principal: CurrentPrincipal, flow_id: Id) -> FlowVersionList:
    """Every saved version, newest first (without definitions)."""
    async with rt.db.read() as s:
        if await s.get(BotFlow, flow_id) is None:
            raise not_found("bot_flow", flow_id)
        rows = (await s.execute(select(BotFlowVersion).where(BotFlowVersion.flow_id == flow_id)
                                .order_by(BotFlowVersion.version.desc()))).scalars()
        return FlowVersionList(items=[FlowVersionRead.model_validate(v).model_copy(update={"definition": None})
                                      for v in rows])


@router.get("/bot/flows/{flow_id:int}/versions/{version:int}", response_model=FlowVersionRead)
async def get_version(rt: RuntimeDep, principal: CurrentPrincipal, flow_id: Id, version: VersionNumber,
                      ) -> FlowVersionRead:
    async with rt.db.read() as s:
        row = await s.scalar(select(BotFlowVersion).where(BotFlowVersion.flow_id == flow_id,
                                                          BotFlowVersion.version == version))
        if row is None:
            raise ProblemError(404, "bot_flow_version_not_found", f"Flow {flow_id} has no version {version}.")
        return FlowVersionRead.model_validate(row)


@router.get("/bot/conversations/{conversation_id}", response_model=BotSessionRead)
async def get_session(rt: RuntimeDep, principal: CurrentPrincipal, conversation_id: Id) -> BotSessionRead:
    """What the bot did in a conversation: outcome, the hand-off summary, the collected vars and the trail."""
    async with rt.db.read() as s:
        await get_conversation(s, principal, conversation_id)  # 404 unless the principal may see it
        session = await s.get(BotSession, conversation_id)
        if session is None:
            raise ProblemError(404, "bot_session_not_found",
                               f"The bot did not serve conversation {conversation_id}.")
        state = session.state or {}
        return BotSessionRead(
            conversation_id=session.conversation_id, flow_id=session.flow_id, flow_version=session.flow_version,
            status=session.status, outcome=session.outcome, summary=session.summary, node=state.get("node"),
            language=str(state.get("language", "")), vars=dict(state.get("vars", {})),
            trail=list(state.get("trail", [])), created_at=session.created_at, updated_at=session.updated_at,
            finished_at=session.finished_at)

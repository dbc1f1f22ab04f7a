"""Create, change, version, attach and delete bot flows; every definition is validated before it is saved."""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

import yaml
from sqlalchemy import delete, select

from kommutator.audit.actions import do_audit
from kommutator.auth.principal import Principal
from kommutator.bot.flow import Problem, validate_flow
from kommutator.bot.intent_queries import known_intents
from kommutator.bot.models import BotFlow, BotFlowChannel, BotFlowVersion
from kommutator.bot.schemas import FlowCreate, FlowUpdate
from kommutator.channels.models import Channel
from kommutator.clock import now
from kommutator.common.jsonsafe import UnsafeInput, loads_json, loads_yaml
from kommutator.db import Tx
from kommutator.errors import ProblemError, not_found


def parse_source(source: str) -> Any:
    """Read a definition written as JSON or YAML (JSON is YAML, but JSON errors read better as JSON's)."""
    text = source.strip()
    if text.startswith("{"):
        try:
            return loads_json(text, where="definition")
        except UnsafeInput as unsafe:
            e = unsafe.__cause__
            if not isinstance(e, json.JSONDecodeError):
                raise  # too deep, too large, NaN: its own code
            raise ProblemError(422, "invalid_flow_source", f"definition: JSON error at line {e.lineno}, column "
                               f"{e.colno}: {e.msg}.", errors=[_error("(source)", f"line {e.lineno}, column "
                                                                     f"{e.colno}: {e.msg}")]) from e
    try:
        return loads_yaml(text, where="definition")
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        reason = getattr(e, "problem", None) or str(e)
        raise ProblemError(422, "invalid_flow_source", f"definition: YAML error{where}: {reason}.",
                           errors=[_error("(source)", f"YAML error{where}: {reason}")]) from e


def _error(where: str, message: str, level: str = "error") -> dict[str, str]:
    return {"where": where, "field": f"definition.{where}", "message": message, "level": level}


def definition_of(definition: dict[str, Any] | None, source: str | None) -> Any:
    """The definition from a request: exactly one of ``definition`` (an object) and ``source`` (text)."""
    if (definition is None) == (source is None):
        raise ProblemError(422, "definition_required", "Give the flow as `definition` (an object) or as `source` "
                           "(JSON or YAML text), not both and not neither.")
    return parse_source(source) if source is not None else definition


def check_definition(defn: Any, *, name: str, version: int, intents: Collection[str] | None = None,
                     ) -> tuple[dict[str, Any], list[Problem]]:
    """Validate; 422 listing every error with its place, else the definition (name and version set by the
    server) and its warnings."""
    if isinstance(defn, dict):
        defn = {**defn, "name": defn.get("name") or name, "version": version}
    problems = validate_flow(defn, intents)
    errors = [p for p in problems if p.level == "error"]
    if errors:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ProblemError(422, "invalid_flow", f"{errors[0]}{more}",
                           errors=[_error(p.where, p.message, p.level) for p in problems])
    assert isinstance(defn, dict)
    return defn, [p for p in problems if p.level == "warning"]


async def _check_name(tx: Tx, name: str, flow_id: int | None = None) -> None:
    other = await tx.session.scalar(select(BotFlow.id).where(BotFlow.name == name))
    if other is not None and other != flow_id:
        raise ProblemError(409, "flow_name_taken", f"name: a flow named {name!r} exists already; choose another.")


async def do_attach(tx: Tx, principal: Principal, flow: BotFlow, channel_ids: list[int]) -> list[int]:
    """Make ``channel_ids`` exactly the flow's channels; a channel attached to another flow moves here."""
    ids = list(dict.fromkeys(channel_ids))
    if ids:
        found = set((await tx.session.execute(select(Channel.id).where(Channel.id.in_(ids)))).scalars())
        missing = [i for i in ids if i not in found]
        if missing:
            raise ProblemError(422, "channel_not_found", f"channel_ids: there is no channel with id {missing[0]}.")
    await tx.session.execute(delete(BotFlowChannel).where(BotFlowChannel.flow_id == flow.id))
    if ids:
        await tx.session.execute(delete(BotFlowChannel).where(BotFlowChannel.channel_id.in_(ids)))
        tx.session.add_all([BotFlowChannel(channel_id=i, flow_id=flow.id) for i in ids])
    await tx.session.flush()
    do_audit(tx, principal, "bot_flow.attached", "bot_flow", flow.id, channel_ids=ids)
    return ids


async def do_create_flow(tx: Tx, principal: Principal, data: FlowCreate) -> tuple[BotFlow, list[Problem]]:
    """Save a new flow as version 1 and attach it to its channels."""
    defn, warnings = check_definition(definition_of(data.definition, data.source), name=data.name, version=1,
                                      intents=await known_intents(tx.session))
    await _check_name(tx, data.name)
    ts = now()
    flow = BotFlow(name=data.name, description=data.description, enabled=data.enabled, version=1, definition=defn,
                   created_by_id=principal.user_id, updated_by_id=principal.user_id, created_at=ts, updated_at=ts)
    tx.session.add(flow)
    await tx.session.flush()
    tx.session.add(BotFlowVersion(flow_id=flow.id, version=1, definition=defn, created_by_id=principal.user_id,
                                  created_at=ts))
    do_audit(tx, principal, "bot_flow.created", "bot_flow", flow.id, name=data.name)
    if data.channel_ids:
        await do_attach(tx, principal, flow, data.channel_ids)
    return flow, warnings


async def do_update_flow(tx: Tx, principal: Principal, flow_id: int, data: FlowUpdate) -> tuple[BotFlow, list[Problem]]:
    """Change a flow; a changed definition becomes a new version (running conversations keep theirs)."""
    flow = await tx.session.get(BotFlow, flow_id, with_for_update=True)
    if flow is None:
        raise not_found("bot_flow", flow_id)
    warnings: list[Problem] = []
    if data.name is not None and data.name != flow.name:
        await _check_name(tx, data.name, flow.id)
        flow.name = data.name
    if data.definition is not None or data.source is not None:
        raw = definition_of(data.definition, data.source)
        defn, warnings = check_definition(raw, name=flow.name, version=flow.version,
                                          intents=await known_intents(tx.session))
        if defn != flow.definition:
            flow.version += 1
            defn = {**defn, "version": flow.version}
            flow.definition = defn
            tx.session.add(BotFlowVersion(flow_id=flow.id, version=flow.version, definition=defn,
                                          created_by_id=principal.user_id, created_at=now()))
    if data.description is not None:
        flow.description = data.description
    if data.enabled is not None:
        flow.enabled = data.enabled
    flow.updated_by_id, flow.updated_at = principal.user_id, now()
    await tx.session.flush()
    do_audit(tx, principal, "bot_flow.updated", "bot_flow", flow.id, version=flow.version, enabled=flow.enabled)
    if data.channel_ids is not None:
        await do_attach(tx, principal, flow, data.channel_ids)
    return flow, warnings


async def do_delete_flow(tx: Tx, principal: Principal, flow_id: int) -> None:
    """Delete a flow with its versions; conversations it is serving go to people (see bot/worker.py)."""
    flow = await tx.session.get(BotFlow, flow_id)
    if flow is None:
        raise not_found("bot_flow", flow_id)
    await tx.session.delete(flow)
    do_audit(tx, principal, "bot_flow.deleted", "bot_flow", flow_id, name=flow.name)

"""Message templates: administrators create, change and delete them; the body's placeholders are its parameters.
Refusals answer in the caller's language with both sentences and name the field at fault."""

from __future__ import annotations

from sqlalchemy import select

from kommutator.auth.principal import Principal
from kommutator.clock import now
from kommutator.db import Tx
from kommutator.errors import ProblemError, not_found
from kommutator.outbound.models import MessageTemplate
from kommutator.outbound.schemas import TemplateCreate, TemplateUpdate
from kommutator.outbound.texts import PLACEHOLDER, problem


def _check_admin(principal: Principal) -> None:
    if not principal.is_admin:
        raise ProblemError(403, "admin_required", "Only an administrator may manage message templates.")


def _check_placeholders(body: str, parameters: list[str], language: str) -> None:
    used = set(PLACEHOLDER.findall(body))
    if used != set(parameters):
        raise problem(422, "template_placeholders_mismatch", language, field="parameters",
                      used=", ".join(sorted(used)) or "-", parameters=", ".join(parameters) or "-")


async def _check_free(tx: Tx, name: str, template_language: str, language: str, own_id: int | None = None) -> None:
    stmt = select(MessageTemplate.id).where(MessageTemplate.name == name, MessageTemplate.language == template_language)
    if own_id is not None:
        stmt = stmt.where(MessageTemplate.id != own_id)
    taken = await tx.session.scalar(stmt)
    if taken is not None:
        err = problem(409, "template_exists", language, field="name", name=name, template_language=template_language)
        err.extra["template_id"] = taken
        raise err


async def do_create_template(tx: Tx, principal: Principal, data: TemplateCreate,
                             language: str = "en") -> MessageTemplate:
    _check_admin(principal)
    _check_placeholders(data.body, data.parameters, language)
    await _check_free(tx, data.name, data.language, language)
    row = MessageTemplate(**data.model_dump())
    tx.session.add(row)
    await tx.session.flush()
    return row


async def do_update_template(tx: Tx, principal: Principal, template_id: int, data: TemplateUpdate,
                             language: str = "en") -> MessageTemplate:
    _check_admin(principal)
    row = await tx.session.get(MessageTemplate, template_id, with_for_update=True)
    if row is None:
        raise not_found("template", template_id)
    changes = data.model_dump(exclude_unset=True, exclude_none=True)
    name, template_language = changes.get("name", row.name), changes.get("language", row.language)
    if (name, template_language) != (row.name, row.language):
        await _check_free(tx, name, template_language, language, own_id=row.id)
    _check_placeholders(changes.get("body", row.body), list(changes.get("parameters", row.parameters)), language)
    for key, value in changes.items():
        setattr(row, key, value)
    row.updated_at = now()
    return row


async def do_delete_template(tx: Tx, principal: Principal, template_id: int) -> None:
    _check_admin(principal)
    row = await tx.session.get(MessageTemplate, template_id)
    if row is None:
        raise not_found("template", template_id)
    await tx.session.delete(row)

"""Message templates: administrators create, change and delete them; the body's placeholders are its parameters."""

from __future__ import annotations

from sqlalchemy import select

from kommutator.auth.principal import Principal
from kommutator.clock import now
from kommutator.db import Tx
from kommutator.errors import ProblemError, not_found
from kommutator.outbound.models import MessageTemplate
from kommutator.outbound.schemas import TemplateCreate, TemplateUpdate
from kommutator.outbound.texts import PLACEHOLDER


def _check_admin(principal: Principal) -> None:
    if not principal.is_admin:
        raise ProblemError(403, "admin_required", "Only an administrator may manage message templates.")


def _check_placeholders(body: str, parameters: list[str]) -> None:
    used = set(PLACEHOLDER.findall(body))
    if used != set(parameters):
        raise ProblemError(422, "template_placeholders_mismatch",
                           f"The body's placeholders {sorted(used)} must be exactly the parameters {parameters}.")


async def do_create_template(tx: Tx, principal: Principal, data: TemplateCreate) -> MessageTemplate:
    _check_admin(principal)
    _check_placeholders(data.body, data.parameters)
    taken = await tx.session.scalar(select(MessageTemplate.id).where(
        MessageTemplate.name == data.name, MessageTemplate.language == data.language))
    if taken is not None:
        raise ProblemError(409, "template_exists", f"A template {data.name!r} in {data.language} exists already.",
                           template_id=taken)
    row = MessageTemplate(**data.model_dump())
    tx.session.add(row)
    await tx.session.flush()
    return row


async def do_update_template(tx: Tx, principal: Principal, template_id: int, data: TemplateUpdate) -> MessageTemplate:
    _check_admin(principal)
    row = await tx.session.get(MessageTemplate, template_id)
    if row is None:
        raise not_found("template", template_id)
    for key, value in data.model_dump(exclude_unset=True, exclude_none=True).items():
        setattr(row, key, value)
    _check_placeholders(row.body, list(row.parameters))
    row.updated_at = now()
    return row


async def do_delete_template(tx: Tx, principal: Principal, template_id: int) -> None:
    _check_admin(principal)
    row = await tx.session.get(MessageTemplate, template_id)
    if row is None:
        raise not_found("template", template_id)
    await tx.session.delete(row)

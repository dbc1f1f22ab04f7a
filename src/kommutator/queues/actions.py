"""Creating and changing queues; every rule is checked before anything is written."""

from __future__ import annotations

from sqlalchemy import func, select

from kommutator.agents.models import Skill, Team
from kommutator.audit.actions import do_audit
from kommutator.auth.principal import Principal
from kommutator.common import hours
from kommutator.db import Tx
from kommutator.errors import ProblemError, not_found
from kommutator.events import AgentChanged
from kommutator.queues.models import Queue
from kommutator.queues.schemas import QueueCreate, QueueUpdate
from kommutator.routing import strategies


async def _check(tx: Tx, fields: dict[str, object]) -> None:
    if "strategy" in fields and fields["strategy"] is not None:
        try:
            strategies.get(str(fields["strategy"]))
        except KeyError:
            raise ProblemError(422, "unknown_strategy", f"strategy: {fields['strategy']!r} is not a routing "
                               f"strategy; use one of {', '.join(strategies.names())}.") from None
    if fields.get("team_id") is not None and await tx.session.get(Team, fields["team_id"]) is None:
        raise ProblemError(422, "team_not_found", f"team_id: there is no team with id {fields['team_id']}.")
    skills = fields.get("required_skills")
    if isinstance(skills, list) and skills:
        ids = {int(s["skill_id"]) for s in skills}
        found = set((await tx.session.execute(select(Skill.id).where(Skill.id.in_(ids)))).scalars())
        if missing := sorted(ids - found):
            raise ProblemError(422, "skill_not_found", f"required_skills: these skill ids do not exist: {missing}.")
        if len(ids) != len(skills):
            raise ProblemError(422, "duplicate_skill", "required_skills: name each skill once.")
    if "business_hours" in fields:
        bh = fields["business_hours"]
        problems = hours.validate(bh if isinstance(bh, dict) else None)
        if problems:
            raise ProblemError(422, "invalid_business_hours", " ".join(problems))


async def _name_free(tx: Tx, name: str, queue_id: int | None = None) -> None:
    q = select(func.count()).select_from(Queue).where(Queue.name == name)
    if queue_id is not None:
        q = q.where(Queue.id != queue_id)
    if await tx.session.scalar(q):
        raise ProblemError(409, "queue_name_taken", f"A queue named {name!r} already exists; choose another name.")


async def do_create_queue(tx: Tx, principal: Principal, data: QueueCreate) -> Queue:
    fields = data.model_dump(exclude_unset=True)
    await _check(tx, fields)
    await _name_free(tx, data.name)
    values = {k: v for k, v in fields.items() if v is not None or k in ("team_id", "business_hours")}
    queue = Queue(**values)
    tx.session.add(queue)
    await tx.session.flush()
    do_audit(tx, principal, "queue.created", "queue", queue.id, name=queue.name)
    return queue


async def do_update_queue(tx: Tx, principal: Principal, queue_id: int, data: QueueUpdate) -> Queue:
    queue = await tx.session.get(Queue, queue_id)
    if queue is None:
        raise not_found("queue", queue_id)
    fields = data.model_dump(exclude_unset=True)
    for key, value in fields.items():
        if value is None and key not in ("team_id", "business_hours"):
            raise ProblemError(422, "validation_failed", f"{key}: may not be null.")
    await _check(tx, fields)
    if "name" in fields:
        await _name_free(tx, str(fields["name"]), queue_id)
    for key, value in fields.items():
        setattr(queue, key, value)
    do_audit(tx, principal, "queue.updated", "queue", queue_id, fields=sorted(fields))
    tx.publish(AgentChanged(user_id=principal.user_id, changes={"queue": queue_id}))
    return queue


async def do_delete_queue(tx: Tx, principal: Principal, queue_id: int) -> None:
    queue = await tx.session.get(Queue, queue_id)
    if queue is None:
        raise not_found("queue", queue_id)
    await tx.session.delete(queue)
    do_audit(tx, principal, "queue.deleted", "queue", queue_id, name=queue.name)

"""/api/v1/contacts/{id}/export: a person's data in one archive (supervisors and administrators; audited)."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import tempfile
from pathlib import Path
from typing import Literal

from fastapi import APIRouter, Query
from pydantic import Field
from sqlalchemy import select
from starlette.background import BackgroundTask
from starlette.responses import FileResponse, Response

from kommutator.audit.actions import do_audit
from kommutator.auth.deps import CurrentPrincipal, RuntimeDep
from kommutator.channels.models import Channel
from kommutator.common.routes import SafeRoute
from kommutator.common.schemas import MAX_ID, Id, ReadModel, Strict
from kommutator.contacts import policy
from kommutator.db import Tx
from kommutator.errors import ProblemError, not_found
from kommutator.privacy import retention
from kommutator.privacy.erase import do_erase_person, remove_files
from kommutator.privacy.export import collect, write_archive
from kommutator.privacy.models import RetentionPolicy

router = APIRouter(tags=["contacts"], route_class=SafeRoute)


@router.get("/contacts/{contact_id}/export", response_class=FileResponse,
            responses={200: {"content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
                             "description": "data.json (every table's rows about the person) and files/"}})
async def export_contact(rt: RuntimeDep, principal: CurrentPrincipal, contact_id: Id) -> FileResponse:
    """Everything stored about a person (and the profiles merged into theirs): the profile, identities,
    consents, conversations with messages, timelines, ratings, the bot's sessions, notifications sent, the audit
    entries about them, and their files. For a subject access request (GDPR art. 15, 152-FZ art. 14)."""
    policy.check_may(principal, "export")
    async with rt.db.read() as s:
        await policy.check_see(s, principal, contact_id)
        tables = await collect(s, contact_id)

    async def audit(tx: Tx) -> None:
        do_audit(tx, principal, "contact.exported", "contact", contact_id,
                 rows=sum(len(v) for v in tables.values()))

    await rt.db.write(audit)
    handle, name = tempfile.mkstemp(prefix="kommutator-export-", suffix=".zip")
    path = Path(name)
    os.close(handle)
    await asyncio.to_thread(write_archive, path, contact_id, tables, rt.settings.data_dir / "files")
    return FileResponse(path, media_type="application/zip", filename=f"contact-{contact_id}.zip",
                        background=BackgroundTask(path.unlink, missing_ok=True))


@router.delete("/contacts/{contact_id}", status_code=204)
async def erase_contact(rt: RuntimeDep, principal: CurrentPrincipal, contact_id: Id) -> Response:
    """Erase a person (administrators only): the contact and the profiles merged into it, their conversations,
    messages, files, raw provider events, notifications and deliveries about them; the audit log keeps what was
    done but no longer their data (docs/privacy.md)."""
    files = await rt.db.write(lambda tx: do_erase_person(tx, principal, contact_id))
    await asyncio.to_thread(remove_files, rt.settings.data_dir / "files", files)
    if rt.db.is_sqlite:  # the write-ahead log still holds the pages as they were: fold it in and empty it
        async with rt.db.engine.connect() as conn:
            await conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    return Response(status_code=204)


# ---- retention ---------------------------------------------------------------------------------------------

class RetentionCreate(Strict):
    kind: Literal["conversations", "attachments", "raw_events", "audit"] = Field(
        description="conversations: resolved ones whose last message is older; attachments: files (messages stay); "
                    "raw_events: raw provider payloads; audit: audit log entries (every channel)")
    days: int = Field(ge=1, le=36500)
    channel_id: int | None = Field(None, ge=1, le=MAX_ID, description="Only this channel's data; null: every channel")
    enabled: bool = True


class RetentionUpdate(Strict):
    days: int | None = Field(None, ge=1, le=36500)
    enabled: bool | None = None


class RetentionRead(ReadModel):
    id: int
    kind: str
    channel_id: int | None
    days: int
    enabled: bool
    last_run_at: dt.datetime | None
    last_removed: int


class RetentionOutcome(ReadModel):
    policy_id: int
    kind: str
    channel_id: int | None
    days: int
    count: int = Field(description="What is (dry run: would be) removed")


@router.get("/retention-policies", response_model=list[RetentionRead], tags=["audit"])
async def list_retention(rt: RuntimeDep, principal: CurrentPrincipal) -> list[RetentionRead]:
    principal.require_admin()
    async with rt.db.read() as s:
        rows = (await s.execute(select(RetentionPolicy).order_by(RetentionPolicy.id))).scalars().all()
    return [RetentionRead.model_validate(r) for r in rows]


@router.post("/retention-policies", response_model=RetentionRead, status_code=201, tags=["audit"])
async def create_retention(rt: RuntimeDep, principal: CurrentPrincipal, body: RetentionCreate) -> RetentionRead:
    """Keep one kind of data for ``days`` (for one channel or all); applied daily (docs/privacy.md)."""
    principal.require_admin()

    async def job(tx: Tx) -> RetentionPolicy:
        if body.kind == "audit" and body.channel_id is not None:
            raise ProblemError(422, "audit_for_every_channel", "channel_id: the audit log is kept for every channel "
                                                               "at once; leave channel_id out.")
        if body.channel_id is not None and await tx.session.get(Channel, body.channel_id) is None:
            raise ProblemError(422, "channel_not_found", f"channel_id: there is no channel with id {body.channel_id}.")
        row = RetentionPolicy(kind=body.kind, channel_id=body.channel_id, days=body.days, enabled=body.enabled,
                              last_removed=0)
        tx.session.add(row)
        await tx.session.flush()
        do_audit(tx, principal, "retention.create", "retention_policy", row.id, kind=row.kind, days=row.days,
                 channel_id=row.channel_id)
        return row

    return RetentionRead.model_validate(await rt.db.write(job))


@router.patch("/retention-policies/{policy_id}", response_model=RetentionRead, tags=["audit"])
async def update_retention(rt: RuntimeDep, principal: CurrentPrincipal, policy_id: Id,
                           body: RetentionUpdate) -> RetentionRead:
    principal.require_admin()

    async def job(tx: Tx) -> RetentionPolicy:
        row = await tx.session.get(RetentionPolicy, policy_id)
        if row is None:
            raise not_found("retention_policy", policy_id)
        for key, value in body.model_dump(exclude_unset=True, exclude_none=True).items():
            setattr(row, key, value)
        do_audit(tx, principal, "retention.update", "retention_policy", row.id, days=row.days, enabled=row.enabled)
        return row

    return RetentionRead.model_validate(await rt.db.write(job))


@router.delete("/retention-policies/{policy_id}", status_code=204, tags=["audit"])
async def delete_retention(rt: RuntimeDep, principal: CurrentPrincipal, policy_id: Id) -> Response:
    principal.require_admin()

    async def job(tx: Tx) -> None:
        row = await tx.session.get(RetentionPolicy, policy_id)
        if row is None:
            raise not_found("retention_policy", policy_id)
        await tx.session.delete(row)
        do_audit(tx, principal, "retention.delete", "retention_policy", policy_id)

    await rt.db.write(job)
    return Response(status_code=204)


@router.post("/retention/run", response_model=list[RetentionOutcome], tags=["audit"])
async def run_retention(rt: RuntimeDep, principal: CurrentPrincipal,
                        dry_run: bool = Query(True, description="Count what would go and change nothing")
                        ) -> list[RetentionOutcome]:
    """Apply the policies now (the server also does it daily); by default a dry run that only counts."""
    principal.require_admin()
    outcomes = await retention.apply(rt, dry_run=dry_run)
    return [RetentionOutcome.model_validate(o, from_attributes=True) for o in outcomes]

"""/api/v1/contacts/{id}/export: a person's data in one archive (supervisors and administrators; audited)."""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path

from fastapi import APIRouter
from starlette.background import BackgroundTask
from starlette.responses import FileResponse, Response

from kommutator.audit.actions import do_audit
from kommutator.auth.deps import CurrentPrincipal, RuntimeDep
from kommutator.common.routes import SafeRoute
from kommutator.common.schemas import Id
from kommutator.contacts import policy
from kommutator.db import Tx
from kommutator.privacy.erase import do_erase_person, remove_files
from kommutator.privacy.export import collect, write_archive

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

"""/api/v1/contacts: create, read, search, update, merge, split an identity off, erase."""

from __future__ import annotations

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from sqlalchemy import select

from kommutator.audit.actions import audit_read, do_audit
from kommutator.auth.deps import CurrentPrincipal, RuntimeDep
from kommutator.auth.principal import Principal
from kommutator.common.pagination import CursorQuery, decode_id_cursor, encode_id_cursor
from kommutator.common.routes import SafeRoute
from kommutator.common.schemas import Id
from kommutator.contacts import actions, card, export, policy, queries
from kommutator.contacts.models import Contact
from kommutator.contacts.schemas import (
    ContactCreate,
    ContactFilters,
    ContactList,
    ContactMerge,
    ContactRead,
    ContactUpdate,
    IdentityIn,
    IdentitySplitRead,
)
from kommutator.db import Tx

router = APIRouter(tags=["contacts"], route_class=SafeRoute)


async def _read(rt: RuntimeDep, principal: Principal, contact_id: int) -> ContactRead:
    async with rt.db.read() as s:
        contact = await queries.get_contact(s, principal, contact_id=contact_id)
        return (await queries.contacts_read(s, [contact]))[0]


SEGMENT = Query(None, max_length=100, description='Only contacts whose "segment" attribute is this value')
LABEL = Query(None, max_length=50, description="Only contacts with a conversation carrying this label")
PREFERRED = Query(None, pattern=r"^[a-z][a-z0-9_]{1,19}$", description="Only contacts whose preferred channel is "
                                                                         "this type")
SEARCH = Query(None, max_length=200, description="Search name, email, phone, channel ids")
MANAGER = Query(None, ge=1, le=2**62, description="Only contacts whose personal manager is this user")


@router.get("/contacts", response_model=ContactList)
async def list_contacts(
    rt: RuntimeDep, principal: CurrentPrincipal,
    q: str | None = SEARCH, manager_id: int | None = MANAGER, preferred_channel: str | None = PREFERRED,
    segment: str | None = SEGMENT, label: str | None = LABEL,
    limit: int = Query(50, ge=1, le=200), cursor: CursorQuery = None,
) -> ContactList:
    """Contacts the caller may see (agents: those they manage or have a conversation with), newest first."""
    filters = ContactFilters(q=q, manager_id=manager_id, preferred_channel=preferred_channel, segment=segment,
                             label=label)
    stmt = policy.visible(select(Contact).where(Contact.merged_into_id.is_(None)), principal)
    stmt = queries.filtered(stmt.order_by(Contact.id.desc()).limit(limit + 1), filters)
    if cursor:
        stmt = stmt.where(Contact.id < decode_id_cursor(cursor))
    async with rt.db.read() as s:
        rows = list((await s.execute(stmt)).scalars())
        items = await queries.contacts_read(s, rows[:limit])
    nxt = encode_id_cursor(rows[limit - 1].id) if len(rows) > limit else None
    return ContactList(items=items, next_cursor=nxt)


@router.get("/contacts/export", response_class=StreamingResponse,
            responses={200: {"content": {"text/csv": {}}, "description": "One row per contact, with a header"}})
async def export_contacts(
    rt: RuntimeDep, principal: CurrentPrincipal,
    q: str | None = SEARCH, manager_id: int | None = MANAGER, preferred_channel: str | None = PREFERRED,
    segment: str | None = SEGMENT, label: str | None = LABEL,
) -> StreamingResponse:
    """The contacts list as CSV, with the list's filters (supervisors and administrators; the export is recorded
    in the audit log). Streamed a page at a time, so a large base does not sit in memory."""
    policy.check_may(principal, "export")
    filters = ContactFilters(q=q, manager_id=manager_id, preferred_channel=preferred_channel, segment=segment,
                             label=label)
    await rt.db.write(lambda tx: _audit_export(tx, principal, filters))
    return StreamingResponse(export.rows(rt, principal, filters), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": 'attachment; filename="contacts.csv"'})


async def _audit_export(tx: Tx, principal: Principal, filters: ContactFilters) -> None:
    do_audit(tx, principal, "contacts.exported", "contact", "*", **filters.model_dump(exclude_none=True))


@router.post("/contacts", response_model=ContactRead, status_code=201)
async def create_contact(rt: RuntimeDep, principal: CurrentPrincipal, body: ContactCreate) -> ContactRead:
    """Create a contact, with identities, consents and a personal manager (supervisors and administrators)."""
    async def job(tx: Tx) -> Contact:
        return await actions.do_create_contact(tx, principal, body)

    return await _read(rt, principal, (await rt.db.write(job)).id)


@router.get("/contacts/{contact_id}", response_model=ContactRead)
async def get_contact(rt: RuntimeDep, principal: CurrentPrincipal, contact_id: Id) -> ContactRead:
    """A contact's card (agents: contacts they manage or have a conversation with). Each read of personal data is
    recorded in the audit log."""
    result = await _read(rt, principal, contact_id)
    async with rt.db.read() as s:  # what other domains add to the card (quality/: past ratings)
        await card.fill(s, principal, contact_id, result)
    await audit_read(rt, principal, "contact", contact_id)
    return result


@router.patch("/contacts/{contact_id}", response_model=ContactRead)
async def update_contact(rt: RuntimeDep, principal: CurrentPrincipal, contact_id: Id,
                         body: ContactUpdate) -> ContactRead:
    """Change fields and consents (agents: of contacts they can see); the personal manager only by supervisors
    and administrators (docs/access.md)."""
    await rt.db.write(lambda tx: actions.do_update_contact(tx, principal, contact_id, body))
    return await _read(rt, principal, contact_id)


@router.post("/contacts/{contact_id}/identities", response_model=ContactRead, status_code=201)
async def add_identity(rt: RuntimeDep, principal: CurrentPrincipal, contact_id: Id, body: IdentityIn) -> ContactRead:
    """Add a channel identity to the contact (supervisors and administrators)."""
    await rt.db.write(lambda tx: actions.do_add_identity(tx, principal, contact_id, body))
    return await _read(rt, principal, contact_id)


@router.post("/contacts/{contact_id}/merge", response_model=ContactRead)
async def merge_contacts(rt: RuntimeDep, principal: CurrentPrincipal, contact_id: Id,
                         body: ContactMerge) -> ContactRead:
    """Merge a duplicate into this contact: identities, conversations and consents move here (supervisors and
    administrators)."""
    await rt.db.write(lambda tx: actions.do_merge_contacts(tx, principal, contact_id, body.other_id))
    return await _read(rt, principal, contact_id)


@router.post("/contacts/{contact_id}/identities/{identity_id}/split", response_model=IdentitySplitRead,
             status_code=201)
async def split_identity(rt: RuntimeDep, principal: CurrentPrincipal, contact_id: Id,
                         identity_id: Id) -> IdentitySplitRead:
    """Move one identity to a new contact, with the conversations that came only through its channel type since
    it joined (supervisors and administrators; 409 for the contact's only identity)."""
    new, moved = await rt.db.write(lambda tx: actions.do_split_identity(tx, principal, contact_id, identity_id))
    return IdentitySplitRead(contact=await _read(rt, principal, new.id), from_contact_id=contact_id,
                             moved_conversation_ids=moved)


# DELETE /contacts/{id} (erasure) lives in privacy/api.py: it reads the registry of every table.

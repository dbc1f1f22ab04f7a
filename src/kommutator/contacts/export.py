"""The contacts list as CSV: the list's filters, a page of contacts per read, one text chunk per page."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from sqlalchemy import select

from kommutator.agents.models import User
from kommutator.auth.principal import Principal
from kommutator.contacts import policy, queries
from kommutator.contacts.models import Contact
from kommutator.contacts.schemas import ContactFilters, ContactRead

if TYPE_CHECKING:
    from kommutator.runtime import Runtime

BATCH = 500
COLUMNS = ["id", "name", "email", "phone", "language", "preferred_channel", "segment", "manager_id", "manager",
           "identities", "created_at"]
# A cell a spreadsheet would run as a formula starts with one of these; a leading apostrophe keeps it text.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def cell(value: object) -> str:
    """One CSV cell: text as typed, except that nothing can become a spreadsheet formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def line(c: ContactRead, managers: dict[int, str]) -> list[str]:
    identities = "; ".join(f"{i.channel_type}:{i.external_id}" for i in c.identities)
    return [cell(v) for v in (c.id, c.name, c.email, c.phone, c.language, c.preferred_channel,
                              c.attributes.get("segment"), c.manager_id,
                              managers.get(c.manager_id, "") if c.manager_id else "", identities,
                              c.created_at.isoformat())]


async def rows(rt: Runtime, principal: Principal, filters: ContactFilters) -> AsyncIterator[str]:
    """The header, then the contacts the principal may see, newest first, a batch per read transaction."""
    out = io.StringIO()
    writer = csv.writer(out)
    out.write("\ufeff")  # spreadsheet programs read the file as UTF-8 (Cyrillic names) only with this mark
    writer.writerow(COLUMNS)
    yield out.getvalue()
    before: int | None = None
    while True:
        stmt = policy.visible(select(Contact).where(Contact.merged_into_id.is_(None)), principal)
        stmt = queries.filtered(stmt, filters).order_by(Contact.id.desc()).limit(BATCH)
        if before is not None:
            stmt = stmt.where(Contact.id < before)
        async with rt.db.read() as s:
            batch = list((await s.execute(stmt)).scalars())
            if not batch:
                return
            read = await queries.contacts_read(s, batch)
            manager_ids = {c.manager_id for c in batch if c.manager_id}
            managers: dict[int, str] = {int(uid): str(name) for uid, name in (await s.execute(
                select(User.id, User.name).where(User.id.in_(manager_ids)))).all()} if manager_ids else {}
        out = io.StringIO()
        writer = csv.writer(out)
        for c in read:
            writer.writerow(line(c, managers))
        yield out.getvalue()
        if len(batch) < BATCH:
            return
        before = batch[-1].id

"""Everything about one contact, read through the registry: one JSON document plus the files they sent or got."""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import zipfile
from pathlib import Path
from typing import Any

from sqlalchemy import Table, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

import kommutator.models  # noqa: F401  (every table in the metadata)
from kommutator.clock import now
from kommutator.conversations.files import safe_filename
from kommutator.db import Base
from kommutator.privacy.registry import HOLDINGS

CHUNK = 500  # ids per IN (…): well below every backend's limit on bound parameters


def _table(name: str) -> Table:
    return Base.metadata.tables[name]


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return {"base64": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, decimal.Decimal):
        return str(value)
    return value


async def _rows(s: AsyncSession, table: Table, column: str, values: list[Any], *,
                extra: Any = None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i in range(0, len(values), CHUNK):
        stmt = select(table).where(table.c[column].in_(values[i:i + CHUNK]))
        if extra is not None:
            stmt = stmt.where(extra)
        key = table.c["id"] if "id" in table.c else next(iter(table.primary_key.columns))
        out.extend({k: _plain(v) for k, v in row._mapping.items()}
                   for row in (await s.execute(stmt.order_by(key))).all())
    return out


async def collect(s: AsyncSession, contact_id: int) -> dict[str, list[dict[str, Any]]]:
    """Each table's rows about the contact (and the contacts merged into it), in the registry's order."""
    contacts = _table("contacts")
    found = (await s.execute(select(contacts.c.id).where(or_(contacts.c.id == contact_id,
                                                             contacts.c.merged_into_id == contact_id)))).scalars()
    ids: dict[str, list[Any]] = {"contact": sorted(found)}
    out: dict[str, list[dict[str, Any]]] = {}
    for name, holding in HOLDINGS.items():
        table = _table(name)
        extra = None
        if holding.by == "subject:contact":
            values: list[Any] = [str(i) for i in ids["contact"]]
            extra = table.c["subject_type"] == "contact"
        elif holding.by == "order_key":
            values = [f"contact:{i}" for i in ids["contact"]] + [f"conversation:{i}" for i in ids["conversation"]]
        else:
            values = ids.get(holding.by, [])
        rows = await _rows(s, table, holding.column, values, extra=extra) if values else []
        out[name] = rows
        if name == "contact_identities":
            ids["identity:webchat"] = [r["external_id"] for r in rows if r["channel_type"] == "webchat"]
        elif name in ("conversations", "messages", "outreach"):
            ids[{"conversations": "conversation", "messages": "message", "outreach": "outreach"}[name]] = \
                [r["id"] for r in rows]
        elif name == "quality_alerts":
            ids["alert"] = [r["id"] for r in rows]
    return out


def write_archive(path: Path, contact_id: int, tables: dict[str, list[dict[str, Any]]], files_root: Path) -> int:
    """``contact-<id>.zip``: ``data.json`` and ``files/<attachment id>-<name>``; returns the files written."""
    document = {"format": "kommutator.personal-data/1", "contact_id": contact_id,
                "exported_at": now().isoformat(), "tables": tables}
    written = 0
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("data.json", json.dumps(document, ensure_ascii=False, indent=1, default=str))
        for att in tables.get("attachments", []):
            source = files_root / str(att["storage_key"])
            if source.is_file():
                z.write(source, f"files/{att['id']}-{safe_filename(str(att['filename']))}")
                written += 1
    return written

"""Register the CRM card with the core, called once from the composition root (app.py): the card's section."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from kommutator.auth.principal import Principal
from kommutator.contacts import card
from kommutator.crm.models import CrmCard


async def card_crm(s: AsyncSession, principal: Principal, contact_id: int) -> dict[str, Any] | None:
    row = await s.get(CrmCard, contact_id)
    if row is None:
        return None
    return {"status": row.status, "data": row.data, "error": row.error, "fetched_at": row.fetched_at.isoformat()}


def register_all() -> None:
    card.add_section("crm", card_crm)

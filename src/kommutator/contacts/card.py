"""What other domains add to the customer card (the contact and conversation detail APIs), registered at start-up.

The card is the core's; quality's past ratings (``ratings``) are added by quality/setup.py, so the core does not
import quality.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from kommutator.auth.principal import Principal

# (read session, principal, contact id) -> the section's value on the card
Section = Callable[[AsyncSession, Principal, int], Awaitable[Any]]
sections: dict[str, Section] = {}


def add_section(field: str, section: Section) -> None:
    """Fill the card's ``field`` with ``section`` (one per field; registering again replaces it)."""
    sections[field] = section


async def fill(s: AsyncSession, principal: Principal, contact_id: int, card: Any) -> None:
    """Set each registered section on ``card`` (a ContactRead), as the principal may see it."""
    for field, section in sections.items():
        setattr(card, field, await section(s, principal, contact_id))

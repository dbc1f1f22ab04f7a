"""Who may read and change which contact: the one place contact access is decided (docs/access.md).

A personal manager sees every conversation of their contacts, so whatever can make someone a contact's
manager, or move a customer's identities or conversations to a contact someone manages, hands out sight of
conversations. Those operations are for supervisors and administrators only; an agent edits ordinary fields
and consents of the contacts they can already see, and a contact they cannot see answers 404 like a missing
one. Contact actions call these checks before writing anything.
"""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy import Select, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from kommutator.agents.models import User
from kommutator.auth.principal import Principal
from kommutator.contacts.models import Contact
from kommutator.conversations.models import Conversation
from kommutator.conversations.queries import visible as visible_conversations
from kommutator.errors import ProblemError, not_found

Operation = Literal["create", "set_manager", "merge", "add_identity", "split", "erase", "export"]

# What each operation needs beyond seeing the contact, and how the refusal reads.
_NEEDS: dict[Operation, tuple[Literal["supervisor", "admin"], str]] = {
    "create": ("supervisor", "create contacts (customers become contacts when they first write)"),
    "set_manager": ("supervisor", "set, change or clear a contact's personal manager"),
    "merge": ("supervisor", "merge contacts"),
    "add_identity": ("supervisor", "add an identity to a contact"),
    "split": ("supervisor", "split an identity off a contact"),
    "erase": ("admin", "erase a contact"),
    "export": ("supervisor", "export personal data (a person's archive or the contacts list)"),
}

# Roles a personal manager may have: people who serve customers (an administrator sees everything anyway).
MANAGER_ROLES = frozenset({"agent", "supervisor"})


def check_may(principal: Principal, operation: Operation) -> None:
    """Refuse (403) an operation the principal's role does not allow."""
    role, what = _NEEDS[operation]
    if role == "admin" and not principal.is_admin:
        raise ProblemError(403, "admin_required", f"Only an administrator may {what}.")
    if role == "supervisor" and not principal.is_supervisor:
        raise ProblemError(403, "supervisor_required",
                           f"Only a supervisor or administrator may {what}; ask one to do it.")


def visible(stmt: Select[Any], principal: Principal) -> Select[Any]:
    """Filter a query on contacts to those the principal may see: all for supervisors; for an agent, the
    contacts they manage and those with a conversation they may see."""
    if principal.is_supervisor:
        return stmt
    seen = visible_conversations(select(Conversation.contact_id), principal)
    return stmt.where(or_(Contact.manager_id == principal.user_id, Contact.id.in_(seen)))


async def check_see(session: AsyncSession, principal: Principal | None, contact_id: int, *,
                    for_update: bool = False) -> Contact:
    """The live contact, if the principal may see it; else 404, the same as for a contact that does not exist.
    ``principal`` None is the system itself (seeding, channels)."""
    contact = await session.get(Contact, contact_id, with_for_update=for_update)
    if contact is None or contact.merged_into_id is not None:
        raise not_found("contact", contact_id)
    if principal is None or principal.is_supervisor or contact.manager_id == principal.user_id:
        return contact
    seen = visible_conversations(select(Conversation.id), principal).where(Conversation.contact_id == contact_id)
    if await session.scalar(seen.limit(1)) is None:
        raise not_found("contact", contact_id)
    return contact


async def check_manager(session: AsyncSession, manager_id: int | None) -> None:
    """A personal manager is an active agent or supervisor (or none)."""
    if manager_id is None:
        return
    user = await session.get(User, manager_id)
    if user is None or not user.active or user.role not in MANAGER_ROLES:
        raise ProblemError(422, "manager_not_found",
                           f"manager_id {manager_id} is not an active agent or supervisor; choose one of them "
                           "(or null for no personal manager).")


async def check_create(session: AsyncSession, principal: Principal | None, manager_id: int | None) -> None:
    if principal is not None:
        check_may(principal, "create")
    await check_manager(session, manager_id)


async def check_update(session: AsyncSession, principal: Principal | None, contact: Contact,
                       fields: dict[str, Any]) -> None:
    """Ordinary fields and consents: anyone who sees the contact. A different manager: supervisors, and only
    an eligible one. (Sending the manager the contact already has changes nothing and is allowed.)"""
    if "manager_id" in fields and fields["manager_id"] != contact.manager_id:
        if principal is not None:
            check_may(principal, "set_manager")
        await check_manager(session, fields["manager_id"])

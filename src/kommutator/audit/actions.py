"""Record administrative and data-access actions in the audit log."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from kommutator.audit.models import AuditEntry
from kommutator.auth.principal import Principal
from kommutator.db import Tx

if TYPE_CHECKING:
    from kommutator.runtime import Runtime


def do_audit(tx: Tx, principal: Principal | None, action: str, subject_type: str, subject_id: object = "",
             **detail: Any) -> None:
    """Append one entry in the same transaction as the change it describes."""
    tx.session.add(AuditEntry(
        actor_user_id=principal.user_id if principal else None,
        actor_token_id=principal.token_id if principal else None,
        action=action, subject_type=subject_type, subject_id=str(subject_id),
        ip=principal.ip if principal else "", detail=detail,
    ))


# A screen that re-reads the same record every few seconds is one access, not hundreds of audit rows.
READ_AUDIT_WINDOW = 600.0


async def audit_read(rt: Runtime, principal: Principal, subject_type: str, subject_id: object) -> None:
    """Record that ``principal`` read personal data of a subject, at most once per window per process."""
    seen = rt.audit_reads
    key = (principal.user_id, principal.token_id, subject_type, str(subject_id))
    moment = time.monotonic()
    if moment - seen.get(key, -READ_AUDIT_WINDOW) < READ_AUDIT_WINDOW:
        return
    if len(seen) > 50_000:
        seen.clear()
    seen[key] = moment
    await rt.db.write(lambda tx: _record(tx, principal, f"{subject_type}.viewed", subject_type, subject_id))


async def _record(tx: Tx, principal: Principal, action: str, subject_type: str, subject_id: object) -> None:
    do_audit(tx, principal, action, subject_type, subject_id)

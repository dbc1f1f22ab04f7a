"""Record administrative and data-access actions in the audit log."""

from __future__ import annotations

from typing import Any

from kommutator.audit.models import AuditEntry
from kommutator.auth.principal import Principal
from kommutator.db import Tx


def do_audit(tx: Tx, principal: Principal | None, action: str, subject_type: str, subject_id: object = "",
             **detail: Any) -> None:
    """Append one entry in the same transaction as the change it describes."""
    tx.session.add(AuditEntry(
        actor_user_id=principal.user_id if principal else None,
        actor_token_id=principal.token_id if principal else None,
        action=action, subject_type=subject_type, subject_id=str(subject_id),
        ip=principal.ip if principal else "", detail=detail,
    ))

"""Who is making a request, and what they may see."""

from __future__ import annotations

from dataclasses import dataclass

from kommutator.errors import ProblemError


@dataclass(frozen=True)
class Principal:
    user_id: int
    name: str
    role: str
    team_ids: frozenset[int]
    token_id: int | None = None
    session_id: int | None = None
    ip: str = ""

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def is_supervisor(self) -> bool:
        """Supervisors and administrators see every conversation."""
        return self.role in ("admin", "supervisor")

    def require_admin(self) -> None:
        if not self.is_admin:
            raise ProblemError(403, "admin_required", "Only an administrator may do this.")

    def require_supervisor(self) -> None:
        if not self.is_supervisor:
            raise ProblemError(403, "supervisor_required", "Only a supervisor or administrator may do this.")

    def can_see_conversation(self, *, team_id: int | None, assignee_id: int | None,
                             manager_id: int | None = None) -> bool:
        """Agents see conversations of their teams, assigned to them, or of customers they are the personal
        manager of (whoever handled them)."""
        if self.is_supervisor:
            return True
        return (assignee_id == self.user_id or manager_id == self.user_id
                or (team_id is not None and team_id in self.team_ids))

"""Changes to users, teams and skills. Each takes the transaction and the acting principal."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, func, select, update

from kommutator.agents.models import Skill, Team, TeamMember, User, UserSkill
from kommutator.agents.schemas import SkillCreate, SkillLevel, TeamCreate, TeamUpdate, UserCreate, UserUpdate
from kommutator.audit.actions import do_audit
from kommutator.auth.actions import do_end_user_sessions
from kommutator.auth.principal import Principal
from kommutator.clock import now
from kommutator.db import Tx
from kommutator.errors import ProblemError, not_found
from kommutator.events import AgentChanged


async def check_email_free(tx: Tx, email: str) -> None:
    taken = await tx.session.scalar(select(func.count()).select_from(User).where(User.email == email))
    if taken:
        raise ProblemError(409, "email_taken", f"A user with email {email} already exists.")


async def do_create_user(tx: Tx, principal: Principal | None, data: UserCreate, *, password_hash: str) -> User:
    """Create a user; the password is hashed by the caller, outside the shared writer."""
    email = data.email.lower()
    await check_email_free(tx, email)
    user = User(email=email, name=data.name, role=data.role, locale=data.locale, capacity=data.capacity,
                password_hash=password_hash, presence="offline")
    tx.session.add(user)
    await tx.session.flush()
    do_audit(tx, principal, "user.created", "user", user.id, email=email, role=data.role)
    return user


async def do_update_user(tx: Tx, principal: Principal, user_id: int, data: UserUpdate,
                         *, password_hash: str | None = None) -> User:
    """Change a user. A password changed ends sessions: the caller's own change keeps only the session it was made
    in (the API checked the current password first), an administrator's reset of someone else ends all of theirs
    and revokes their API tokens; deactivation ends all and revokes all, so reactivation revives nothing."""
    user = await tx.session.get(User, user_id)
    if user is None:
        raise not_found("user", user_id)
    fields = data.model_dump(exclude_unset=True)
    fields.pop("current_password", None)
    own = {"name", "password", "locale", "presence"}
    if not principal.is_admin and (user_id != principal.user_id or not set(fields) <= own):
        raise ProblemError(403, "admin_required",
                           "You may change only your own name, password, language and presence; "
                           "ask an administrator for the rest.")
    demoting = fields.get("active") is False or fields.get("role", "admin") != "admin"
    if principal.is_admin and user_id == principal.user_id and demoting:
        raise ProblemError(409, "cannot_demote_self",
                               "You cannot deactivate or demote yourself; ask another administrator.")
    for key, value in fields.items():
        if value is None:
            raise ProblemError(422, "validation_failed", f"{key}: may not be null.")
        if key == "password":
            if password_hash is None:
                raise ValueError("do_update_user: a password change needs its hash")
            user.password_hash = password_hash
        elif key == "presence":
            user.presence = value
            user.presence_changed_at = now()
        else:
            setattr(user, key, value)
    user.updated_at = now()
    do_audit(tx, principal, "user.updated", "user", user_id, fields=sorted(fields))
    if fields.get("active") is False:
        await do_end_user_sessions(tx, user_id, reason="user_deactivated", revoke_tokens=True)
    elif "password" in fields and user_id == principal.user_id:
        await do_end_user_sessions(tx, user_id, reason="password_changed", keep_session_id=principal.session_id)
    elif "password" in fields:
        await do_end_user_sessions(tx, user_id, reason="password_reset", revoke_tokens=True)
    # Routing hears presence, capacity and the like; open sockets are re-filtered on a role change.
    announced = sorted(set(fields) & {"presence", "capacity", "active", "channel_weights", "role"})
    if announced:
        tx.publish(AgentChanged(user_id=user_id, changes={k: fields[k] for k in announced}))
    return user


async def do_create_team(tx: Tx, principal: Principal, data: TeamCreate) -> Team:
    if await tx.session.scalar(select(func.count()).select_from(Team).where(Team.name == data.name)):
        raise ProblemError(409, "team_name_taken", f"A team named {data.name!r} already exists.")
    team = Team(name=data.name, description=data.description)
    tx.session.add(team)
    await tx.session.flush()
    do_audit(tx, principal, "team.created", "team", team.id, name=data.name)
    return team


async def do_update_team(tx: Tx, principal: Principal, team_id: int, data: TeamUpdate) -> Team:
    team = await tx.session.get(Team, team_id)
    if team is None:
        raise not_found("team", team_id)
    fields = data.model_dump(exclude_unset=True, exclude_none=True)
    if "name" in fields and fields["name"] != team.name and await tx.session.scalar(
        select(func.count()).select_from(Team).where(Team.name == fields["name"])
    ):
        raise ProblemError(409, "team_name_taken", f"A team named {fields['name']!r} already exists.")
    for key, value in fields.items():
        setattr(team, key, value)
    do_audit(tx, principal, "team.updated", "team", team_id, fields=sorted(fields))
    return team


async def do_delete_team(tx: Tx, principal: Principal, team_id: int) -> None:
    team = await tx.session.get(Team, team_id)
    if team is None:
        raise not_found("team", team_id)
    members = set((await tx.session.execute(select(TeamMember.user_id).where(
        TeamMember.team_id == team_id))).scalars())
    await tx.session.execute(delete(TeamMember).where(TeamMember.team_id == team_id))
    await tx.session.delete(team)
    do_audit(tx, principal, "team.deleted", "team", team_id, name=team.name)
    await _announce_teams(tx, members)


async def _announce_teams(tx: Tx, user_ids: set[int]) -> None:
    """Tell listeners each user's teams now (open sockets are re-filtered at once; routing looks again)."""
    if not user_ids:
        return
    await tx.session.flush()
    rows = (await tx.session.execute(select(TeamMember.user_id, TeamMember.team_id).where(
        TeamMember.user_id.in_(user_ids)))).all()
    teams: dict[int, list[int]] = {u: [] for u in user_ids}
    for user_id, team_id in rows:
        teams[user_id].append(team_id)
    for user_id in sorted(user_ids):
        tx.publish(AgentChanged(user_id=user_id, changes={"team_ids": sorted(teams[user_id])}))


async def do_set_team_members(tx: Tx, principal: Principal, team_id: int, user_ids: list[int]) -> None:
    if await tx.session.get(Team, team_id) is None:
        raise not_found("team", team_id)
    wanted = set(user_ids)
    found = set((await tx.session.execute(select(User.id).where(User.id.in_(wanted)))).scalars())
    if missing := sorted(wanted - found):
        raise ProblemError(422, "user_not_found", f"These user ids do not exist: {missing}.")
    before = set((await tx.session.execute(select(TeamMember.user_id).where(
        TeamMember.team_id == team_id))).scalars())
    await tx.session.execute(delete(TeamMember).where(TeamMember.team_id == team_id))
    tx.session.add_all([TeamMember(team_id=team_id, user_id=u) for u in sorted(wanted)])
    do_audit(tx, principal, "team.members_set", "team", team_id, user_ids=sorted(wanted))
    tx.publish(AgentChanged(user_id=principal.user_id, changes={"team_members": team_id}))
    await _announce_teams(tx, before ^ wanted)


async def do_create_skill(tx: Tx, principal: Principal, data: SkillCreate) -> Skill:
    if await tx.session.scalar(select(func.count()).select_from(Skill).where(Skill.name == data.name)):
        raise ProblemError(409, "skill_name_taken", f"A skill named {data.name!r} already exists.")
    skill = Skill(name=data.name, description=data.description)
    tx.session.add(skill)
    await tx.session.flush()
    do_audit(tx, principal, "skill.created", "skill", skill.id, name=data.name)
    return skill


async def do_delete_skill(tx: Tx, principal: Principal, skill_id: int) -> None:
    skill = await tx.session.get(Skill, skill_id)
    if skill is None:
        raise not_found("skill", skill_id)
    await tx.session.delete(skill)
    do_audit(tx, principal, "skill.deleted", "skill", skill_id, name=skill.name)


async def do_set_user_skills(tx: Tx, principal: Principal, user_id: int, skills: list[SkillLevel]) -> None:
    tx.publish(AgentChanged(user_id=user_id, changes={"skills": [s.model_dump() for s in skills]}))
    if await tx.session.get(User, user_id) is None:
        raise not_found("user", user_id)
    ids = [s.skill_id for s in skills]
    if len(set(ids)) != len(ids):
        raise ProblemError(422, "duplicate_skill", "Each skill may appear only once.")
    found = set((await tx.session.execute(select(Skill.id).where(Skill.id.in_(ids)))).scalars())
    if missing := sorted(set(ids) - found):
        raise ProblemError(422, "skill_not_found", f"These skill ids do not exist: {missing}.")
    await tx.session.execute(delete(UserSkill).where(UserSkill.user_id == user_id))
    tx.session.add_all([UserSkill(user_id=user_id, skill_id=s.skill_id, level=s.level) for s in skills])
    do_audit(tx, principal, "user.skills_set", "user", user_id, skills=[s.model_dump() for s in skills])


async def do_record_activity(tx: Tx, *, user_id: int, at: dt.datetime) -> None:
    """The agent is answering someone (typing): the accept timeout leaves their conversations alone."""
    await tx.session.execute(update(User).where(User.id == user_id).values(last_active_at=at))

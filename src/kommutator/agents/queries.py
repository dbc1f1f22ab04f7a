"""Reads about users, teams and skills."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from kommutator.agents.models import Skill, Team, TeamMember, User, UserSkill
from kommutator.agents.schemas import SkillLevel, SkillRead, TeamRead, UserRead
from kommutator.conversations.models import Conversation
from kommutator.errors import not_found


async def users_read(session: AsyncSession, users: list[User]) -> list[UserRead]:
    """Shape users with their teams and skills (two queries whatever the count)."""
    ids = [u.id for u in users]
    teams: dict[int, list[int]] = defaultdict(list)
    skills: dict[int, list[SkillLevel]] = defaultdict(list)
    load: dict[int, float] = defaultdict(float)
    if ids:
        for uid, total in (await session.execute(
                select(Conversation.assignee_id, func.sum(Conversation.routing_weight))
                .where(Conversation.status == "assigned", Conversation.assignee_id.in_(ids))
                .group_by(Conversation.assignee_id))).all():
            if uid is not None:
                load[uid] = float(total or 0)
        for tm in (await session.execute(select(TeamMember).where(TeamMember.user_id.in_(ids)))).scalars():
            teams[tm.user_id].append(tm.team_id)
        for us in (await session.execute(select(UserSkill).where(UserSkill.user_id.in_(ids)))).scalars():
            skills[us.user_id].append(SkillLevel(skill_id=us.skill_id, level=us.level))
    return [UserRead.model_validate(u).model_copy(update={"team_ids": sorted(teams[u.id]), "load": load[u.id],
                                                          "skills": skills[u.id]}) for u in users]


async def get_user(session: AsyncSession, *, user_id: int) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise not_found("user", user_id)
    return user


async def team_read(session: AsyncSession, team: Team) -> TeamRead:
    members = (await session.execute(select(TeamMember.user_id).where(TeamMember.team_id == team.id))).scalars()
    return TeamRead.model_validate(team).model_copy(update={"member_ids": sorted(members)})


async def get_team(session: AsyncSession, *, team_id: int) -> Team:
    team = await session.get(Team, team_id)
    if team is None:
        raise not_found("team", team_id)
    return team


async def list_skills(session: AsyncSession) -> list[SkillRead]:
    rows = (await session.execute(select(Skill).order_by(Skill.name))).scalars()
    return [SkillRead.model_validate(s) for s in rows]

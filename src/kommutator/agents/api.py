"""/api/v1/users, /teams, /skills."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Query, Response
from sqlalchemy import select

from kommutator.agents import actions, queries
from kommutator.agents.models import Team, User
from kommutator.agents.schemas import (
    SkillCreate,
    SkillRead,
    TeamCreate,
    TeamMembers,
    TeamRead,
    TeamUpdate,
    UserCreate,
    UserList,
    UserRead,
    UserSkills,
    UserUpdate,
)
from kommutator.auth.api import check_current_password
from kommutator.auth.deps import CurrentPrincipal, RuntimeDep
from kommutator.auth.passwords import hash_password
from kommutator.common.pagination import CursorQuery, decode_id_cursor, encode_id_cursor
from kommutator.common.routes import SafeRoute
from kommutator.common.schemas import Id
from kommutator.db import Tx

router = APIRouter(tags=["users, teams, skills"], route_class=SafeRoute)


@router.get("/users", response_model=UserList)
async def list_users(
    rt: RuntimeDep, principal: CurrentPrincipal,
    limit: int = Query(50, ge=1, le=200), cursor: CursorQuery = None,
    q: str | None = Query(None, max_length=200), role: str | None = Query(None, pattern="^(admin|supervisor|agent)$"),
) -> UserList:
    stmt = select(User).order_by(User.id).limit(limit + 1)
    if cursor:
        stmt = stmt.where(User.id > decode_id_cursor(cursor))
    if q:
        like = f"%{q.lower()}%"
        stmt = stmt.where(User.email.like(like) | User.name.ilike(like))
    if role:
        stmt = stmt.where(User.role == role)
    async with rt.db.read() as s:
        users = list((await s.execute(stmt)).scalars())
        items = await queries.users_read(s, users[:limit])
    return UserList(items=items, next_cursor=encode_id_cursor(users[limit - 1].id) if len(users) > limit else None)


@router.post("/users", response_model=UserRead, status_code=201)
async def create_user(rt: RuntimeDep, principal: CurrentPrincipal, body: UserCreate) -> UserRead:
    principal.require_admin()

    password_hash = await asyncio.to_thread(hash_password, body.password)

    user = await rt.db.write(lambda tx: actions.do_create_user(tx, principal, body, password_hash=password_hash))
    async with rt.db.read() as s:
        return (await queries.users_read(s, [user]))[0]


@router.get("/users/{user_id}", response_model=UserRead)
async def get_user(rt: RuntimeDep, principal: CurrentPrincipal, user_id: Id) -> UserRead:
    async with rt.db.read() as s:
        user = await queries.get_user(s, user_id=user_id)
        return (await queries.users_read(s, [user]))[0]


@router.patch("/users/{user_id}", response_model=UserRead)
async def update_user(rt: RuntimeDep, principal: CurrentPrincipal, user_id: Id, body: UserUpdate) -> UserRead:
    """Change a user (yourself: name, password, language, presence; administrators: anyone, anything).

    Your own new password needs ``current_password`` and ends your other sessions; an administrator's reset of
    someone else's password ends all their sessions and revokes their API tokens; deactivation does both.
    """
    if body.password is not None and user_id == principal.user_id:
        await check_current_password(rt, principal, body.current_password)
    password_hash = await asyncio.to_thread(hash_password, body.password) if body.password else None

    async def job(tx: Tx) -> User:
        return await actions.do_update_user(tx, principal, user_id, body, password_hash=password_hash)

    user = await rt.db.write(job)
    async with rt.db.read() as s:
        return (await queries.users_read(s, [user]))[0]


@router.put("/users/{user_id}/skills", response_model=UserRead)
async def set_user_skills(rt: RuntimeDep, principal: CurrentPrincipal, user_id: Id, body: UserSkills) -> UserRead:
    principal.require_admin()

    await rt.db.write(lambda tx: actions.do_set_user_skills(tx, principal, user_id, body.skills))
    return await get_user(rt, principal, user_id)


@router.get("/teams", response_model=list[TeamRead])
async def list_teams(rt: RuntimeDep, principal: CurrentPrincipal) -> list[TeamRead]:
    async with rt.db.read() as s:
        teams = list((await s.execute(select(Team).order_by(Team.name))).scalars())
        return [await queries.team_read(s, t) for t in teams]


@router.post("/teams", response_model=TeamRead, status_code=201)
async def create_team(rt: RuntimeDep, principal: CurrentPrincipal, body: TeamCreate) -> TeamRead:
    principal.require_admin()

    team = await rt.db.write(lambda tx: actions.do_create_team(tx, principal, body))
    return TeamRead.model_validate(team)


@router.get("/teams/{team_id}", response_model=TeamRead)
async def get_team(rt: RuntimeDep, principal: CurrentPrincipal, team_id: Id) -> TeamRead:
    async with rt.db.read() as s:
        return await queries.team_read(s, await queries.get_team(s, team_id=team_id))


@router.patch("/teams/{team_id}", response_model=TeamRead)
async def update_team(rt: RuntimeDep, principal: CurrentPrincipal, team_id: Id, body: TeamUpdate) -> TeamRead:
    principal.require_admin()

    await rt.db.write(lambda tx: actions.do_update_team(tx, principal, team_id, body))
    return await get_team(rt, principal, team_id)


@router.delete("/teams/{team_id}", status_code=204)
async def delete_team(rt: RuntimeDep, principal: CurrentPrincipal, team_id: Id) -> Response:
    principal.require_admin()

    await rt.db.write(lambda tx: actions.do_delete_team(tx, principal, team_id))
    return Response(status_code=204)


@router.put("/teams/{team_id}/members", response_model=TeamRead)
async def set_team_members(rt: RuntimeDep, principal: CurrentPrincipal, team_id: Id, body: TeamMembers) -> TeamRead:
    principal.require_supervisor()

    await rt.db.write(lambda tx: actions.do_set_team_members(tx, principal, team_id, body.user_ids))
    return await get_team(rt, principal, team_id)


@router.get("/skills", response_model=list[SkillRead])
async def list_skills(rt: RuntimeDep, principal: CurrentPrincipal) -> list[SkillRead]:
    async with rt.db.read() as s:
        return await queries.list_skills(s)


@router.post("/skills", response_model=SkillRead, status_code=201)
async def create_skill(rt: RuntimeDep, principal: CurrentPrincipal, body: SkillCreate) -> SkillRead:
    principal.require_admin()

    return SkillRead.model_validate(await rt.db.write(lambda tx: actions.do_create_skill(tx, principal, body)))


@router.delete("/skills/{skill_id}", status_code=204)
async def delete_skill(rt: RuntimeDep, principal: CurrentPrincipal, skill_id: Id) -> Response:
    principal.require_admin()

    await rt.db.write(lambda tx: actions.do_delete_skill(tx, principal, skill_id))
    return Response(status_code=204)

"""Idempotency-Key on POST: a retry returns the stored result; the key with another body is 422."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from kommutator.contacts.models import Contact


async def contacts(runtime) -> int:  # type: ignore[no-untyped-def]
    async with runtime.db.read() as s:
        return int(await s.scalar(select(func.count()).select_from(Contact)) or 0)


async def test_retry_with_the_same_key_returns_the_first_result(client, admin, runtime):
    headers = {**admin.headers, "Idempotency-Key": "create-ivan-1"}
    first = await client.post("/api/v1/contacts", json={"name": "Ivan"}, headers=headers)
    again = await client.post("/api/v1/contacts", json={"name": "Ivan"}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert await contacts(runtime) == 1


async def test_same_key_with_another_body_is_422(client, admin, runtime):
    headers = {**admin.headers, "Idempotency-Key": "k-2"}
    await client.post("/api/v1/contacts", json={"name": "Ivan"}, headers=headers)
    r = await client.post("/api/v1/contacts", json={"name": "Petr"}, headers=headers)
    assert r.status_code == 422 and r.json()["code"] == "idempotency_key_reused"
    assert await contacts(runtime) == 1


async def test_keys_are_scoped_to_the_caller(client, admin, factory, runtime):
    other = await factory.user("admin")
    await client.post("/api/v1/contacts", json={"name": "A"}, headers={**admin.headers, "Idempotency-Key": "k"})
    r = await client.post("/api/v1/contacts", json={"name": "A"}, headers={**other.headers, "Idempotency-Key": "k"})
    assert r.status_code == 201 and "idempotent-replayed" not in r.headers
    assert await contacts(runtime) == 2


async def test_errors_are_replayed_too_but_not_server_errors(client, admin):
    headers = {**admin.headers, "Idempotency-Key": "bad"}
    first = await client.post("/api/v1/contacts", json={"manager_id": 99999}, headers=headers)
    again = await client.post("/api/v1/contacts", json={"manager_id": 99999}, headers=headers)
    assert first.status_code == again.status_code == 422
    assert again.headers["idempotent-replayed"] == "true"


async def test_concurrent_retries_create_one_contact(client, admin, runtime):
    headers = {**admin.headers, "Idempotency-Key": "storm"}
    results = await asyncio.gather(*[client.post("/api/v1/contacts", json={"name": "Storm"}, headers=headers)
                                     for _ in range(10)])
    codes = sorted(r.status_code for r in results)
    assert set(codes) <= {201, 409}, codes
    assert await contacts(runtime) == 1
    # Once the first finished, every retry gets its result.
    r = await client.post("/api/v1/contacts", json={"name": "Storm"}, headers=headers)
    assert r.status_code == 201 and r.headers["idempotent-replayed"] == "true"


async def test_invalid_key_is_400(client, admin):
    r = await client.post("/api/v1/contacts", json={}, headers={**admin.headers, "Idempotency-Key": "x" * 300})
    assert r.status_code == 400 and r.json()["code"] == "invalid_idempotency_key"

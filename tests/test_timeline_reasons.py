"""Timeline events carry why as a code with values (reason_code, reason_params) that the workspace renders in
its reader's language; the English sentence stays in ``reason`` for integrations, and names people, not ids."""

from __future__ import annotations

import pytest

from .conftest import Clock
from .test_routing import Floor

pytestmark = pytest.mark.usefixtures("clock")


@pytest.fixture
async def floor(client, runtime, factory, admin) -> Floor:  # type: ignore[no-untyped-def]
    f = Floor(client, runtime, factory, admin)
    await f.setup()
    return f


async def test_routing_and_a_transfer_say_why_with_a_code_and_names(floor: Floor, clock: Clock) -> None:
    olga = await floor.agent("Olga", level=4)
    conv = await floor.customer_writes("c1")
    assert await floor.route() == [(conv, olga.id)]
    ivan = await floor.agent("Ivan Petrov", level=4)
    r = await floor.client.post(f"/api/v1/conversations/{conv}/assign", json={"assignee_id": ivan.id},
                                headers=floor.admin.headers)
    assert r.status_code == 200, r.text
    transitions = (await floor.conversation(conv))["transitions"]
    codes = [(t["reason_code"], t["reason_params"]) for t in transitions]
    assert codes[0] == ("created", {"channel_type": "api", "channel_id": floor.channel["id"]})
    assert codes[1][0] == "routed"
    assert codes[1][1] | {"considered": 0} == {"agent_id": olga.id, "agent": "Olga", "strategy": "least_busy",
                                               "considered": 0}
    assert codes[2] == ("assigned", {"agent_id": ivan.id, "agent": "Ivan Petrov", "by": "Admin 1", "note": ""})
    assert transitions[2]["reason"] == "assigned to Ivan Petrov by Admin 1"  # a name, never "user 4"


async def test_an_older_row_without_a_code_still_reads(floor: Floor) -> None:
    conv = await floor.customer_writes("c2")
    from sqlalchemy import update

    from kommutator.conversations.models import Transition

    async def job(tx):  # type: ignore[no-untyped-def]
        await tx.session.execute(update(Transition).values(reason_code="", reason_params={}))

    await floor.rt.db.write(job)
    [row] = (await floor.conversation(conv))["transitions"]
    assert row["reason_code"] == "" and row["reason"].startswith("new message on api channel")

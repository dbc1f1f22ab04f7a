"""Seed a realistic demo workspace: agents with skills and teams, contacts, conversations in several states."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select

from kommutator.agents import actions as agents
from kommutator.agents.models import User
from kommutator.agents.schemas import SkillCreate, SkillLevel, TeamCreate, UserCreate
from kommutator.auth.passwords import hash_password
from kommutator.auth.principal import Principal
from kommutator.bot.actions import do_create_flow
from kommutator.bot.flow import load_default
from kommutator.bot.schemas import FlowCreate
from kommutator.channels.actions import config_of, do_create_channel
from kommutator.channels.base import InboundMessage, InboundSender
from kommutator.channels.schemas import ChannelCreate
from kommutator.clock import now
from kommutator.config import Settings
from kommutator.contacts.actions import do_update_contact
from kommutator.contacts.schemas import ContactUpdate
from kommutator.conversations import actions as conv
from kommutator.conversations.models import Conversation
from kommutator.conversations.schemas import AssignRequest, ConversationUpdate, MessageCreate, StatusRequest
from kommutator.db import Tx
from kommutator.demo.history import Demo, write_history
from kommutator.demo.integrator import DEMO_OUTBOUND_SECRET
from kommutator.demo.service import do_seed_service
from kommutator.demo.webchat import seed_webchat
from kommutator.ingest.actions import do_ingest_message
from kommutator.knowledge.seed import seed_articles
from kommutator.quality.models import SlaPolicy
from kommutator.queues.models import Queue
from kommutator.runtime import Runtime

# The demo API channel accepts customer messages with this token (a real channel gets a random one).
DEMO_INBOUND_TOKEN = "kmi_demo_inbound_token_for_the_website_2026"  # noqa: S105  (a documented demo value)

# email, password, role, name
DEMO_USERS: list[tuple[str, str, str, str]] = [
    ("admin@demo.kommutator.dev", "demo-admin-2026", "admin", "Alexei Admin"),
    ("olga@demo.kommutator.dev", "demo-super-2026", "supervisor", "Olga Smirnova"),
    ("anna@demo.kommutator.dev", "demo-agent-2026", "agent", "Anna Petrova"),
    ("john@demo.kommutator.dev", "demo-agent-2026", "agent", "John Carter"),
    ("maria@demo.kommutator.dev", "demo-agent-2026", "agent", "Maria Ivanova"),
]

# external id, name, language, messages the customer sends
CUSTOMERS: list[tuple[str, str, str, list[str]]] = [
    ("crm-1001", "Ivan Kuznetsov", "ru", ["Здравствуйте! Где мой заказ 48213? Обещали доставить вчера."]),
    ("crm-1002", "Emily Clark", "en", ["Hi, I was charged twice for order 77120.", "Can you refund one of them?"]),
    ("crm-1003", "Dmitry Volkov", "ru", ["Подскажите, какой ближайший офис к метро Сокол?"]),
    ("crm-1004", "Sarah Miller", "en", ["I'd like to change the delivery address for my order."]),
    ("crm-1005", "Elena Sokolova", "ru", ["Хочу оставить жалобу: курьер опоздал на три часа."]),
    ("crm-1006", "Tom Becker", "en", ["Do you ship to Kazakhstan?"]),
]


async def seed(settings: Settings, *, outbound_url: str | None = None, bot: bool = True,
               history: bool = False, crm_url: str | None = None, events_url: str | None = None) -> bool:
    """Create the demo workspace unless it exists; return True when it was created now.

    ``outbound_url``: where the demo API channel delivers agent replies (the stand-in CRM of ``kommutator demo``).
    ``bot``: attach the default bot flow to the demo API channel (tests of the workspace itself leave it off).
    ``history``: also about 90 days of past conversations (demo/history.py) for reports and the forecast, with a
    third channel, an SLA policy and rating questions switched on.
    ``crm_url``/``events_url``: the CRM card asks the demo CRM there, and an event subscription sends there
    (after the history, so it carries only what happens from now on).
    """
    rt = Runtime.build(settings)
    await rt.db.start()
    try:
        async with rt.db.read() as s:
            if await s.scalar(select(func.count()).select_from(User)):
                return False
        await _seed(rt, outbound_url, bot=bot, history=history)
        if crm_url or events_url:
            await _seed_integrations(rt, crm_url, events_url)
        return True
    finally:
        await rt.db.close()


async def _seed(rt: Runtime, outbound_url: str | None, *, bot: bool, history: bool = False) -> None:
    db = rt.db
    hashes = {pw: hash_password(pw) for pw in {u[1] for u in DEMO_USERS}}
    users: dict[str, User] = {}
    for email, password, role, name in DEMO_USERS:
        async def make_user(tx: Tx, email: str = email, password: str = password, role: str = role,
                            name: str = name) -> User:
            data = UserCreate(email=email, name=name, password=password, role=role,
                              locale="ru" if email.startswith(("anna", "maria", "olga")) else "en")
            return await agents.do_create_user(tx, None, data, password_hash=hashes[password])

        users[email.split("@")[0]] = await db.write(make_user)
    admin_user = users["admin"]
    admin = Principal(user_id=admin_user.id, name=admin_user.name, role="admin", team_ids=frozenset())

    async def org(tx: Tx) -> dict[str, Any]:
        skills = {n: (await agents.do_create_skill(tx, admin, SkillCreate(name=n))).id
                  for n in ("russian", "english", "billing", "orders", "complaints")}
        support = await agents.do_create_team(tx, admin, TeamCreate(name="Support", description="First line"))
        sales = await agents.do_create_team(tx, admin, TeamCreate(name="Sales", description="Orders and offers"))
        await agents.do_set_team_members(tx, admin, support.id, [users["anna"].id, users["john"].id,
                                                                  users["olga"].id])
        await agents.do_set_team_members(tx, admin, sales.id, [users["maria"].id, users["olga"].id])
        levels = {"anna": {"russian": 5, "english": 3, "complaints": 4}, "john": {"english": 5, "billing": 4},
                  "maria": {"russian": 5, "orders": 5, "billing": 2}}
        for who, lv in levels.items():
            await agents.do_set_user_skills(tx, admin, users[who].id,
                                            [SkillLevel(skill_id=skills[k], level=v) for k, v in lv.items()])
        general = Queue(name="General support", team_id=support.id, priority=0, required_skills=[],
                        strategy="least_busy", wait_notice_seconds=180,
                        description="Everything from the website until the bot knows better")
        tx.session.add_all([
            general,
            Queue(name="Billing", team_id=support.id, priority=1,
                  required_skills=[{"skill_id": skills["billing"], "min_level": 2}], strategy="least_busy"),
            Queue(name="Orders", team_id=sales.id, priority=0,
                  required_skills=[{"skill_id": skills["orders"], "min_level": 1}], strategy="round_robin",
                  business_hours={"timezone": "Europe/Moscow",
                                  "days": {d: [["09:00", "21:00"]] for d in ("mon", "tue", "wed", "thu", "fri",
                                                                             "sat")}}),
        ])
        await tx.session.flush()
        channel, _ = await do_create_channel(tx, admin, ChannelCreate(
            type="api", name="Website (API)",
            credentials={"inbound_token": DEMO_INBOUND_TOKEN, "outbound_secret": DEMO_OUTBOUND_SECRET},
            settings={"outbound_url": outbound_url} if outbound_url else {},
            team_id=support.id, queue_id=general.id), rt.box)
        return {"support": support.id, "sales": sales.id, "channel": channel}

    made = await db.write(org)
    channel = config_of(made["channel"], rt.box, rt.settings.public_base_url)
    webchat_id = await seed_webchat(rt, admin, team_id=made["support"], queue_id=made["channel"].queue_id)
    await db.write(lambda tx: do_seed_service(tx, admin, supervisor_id=users["olga"].id))

    conv_ids: list[int] = []
    for n, (ext, name, lang, texts) in enumerate(CUSTOMERS):
        for k, text in enumerate(texts):
            async def inbound(tx: Tx, ext: str = ext, name: str = name, lang: str = lang, text: str = text,
                              key: str = f"demo-{n}-{k}") -> int:
                msg = InboundMessage(event_id=key, provider_message_id=key, text=text,
                                     sender=InboundSender(external_id=ext, name=name, language=lang, display=name))
                result = await do_ingest_message(tx, channel=channel, msg=msg, body="{}")
                assert result.received is not None
                return result.received.conversation_id

            cid = await db.write(inbound)
        conv_ids.append(cid)

    def agent(who: str) -> Principal:
        u = users[who]
        return Principal(user_id=u.id, name=u.name, role=u.role, team_ids=frozenset())

    async def work(tx: Tx) -> None:
        c_ivan, c_emily, c_dmitry, c_sarah, c_elena, _c_tom = conv_ids
        await conv.do_assign(tx, admin, c_ivan, AssignRequest(assignee_id=users["anna"].id, team_id=made["support"]))
        await conv.do_send_message(tx, agent("anna"), c_ivan, MessageCreate(
            text="Здравствуйте, Иван! Проверяю заказ 48213, минуту, пожалуйста."))
        await conv.do_send_message(tx, agent("anna"), c_ivan, MessageCreate(
            kind="note", text="Курьерская служба подтвердила задержку; предложить скидку 10%."))
        await conv.do_assign(tx, admin, c_emily, AssignRequest(assignee_id=users["john"].id, team_id=made["support"],
                                                               note="Double charge — check the payment gateway."))
        await conv.do_send_message(tx, agent("john"), c_emily, MessageCreate(
            text="Hello Emily, sorry about that! I've asked billing to refund the duplicate charge."))
        await conv.do_set_status(tx, agent("john"), c_emily, StatusRequest(status="waiting",
                                                                           reason="waiting for the bank reply"))
        await conv.do_assign(tx, admin, c_dmitry, AssignRequest(assignee_id=users["maria"].id, team_id=made["sales"]))
        await conv.do_send_message(tx, agent("maria"), c_dmitry, MessageCreate(
            text="Ближайший офис: Ленинградский проспект, 76, с 9:00 до 21:00."))
        await conv.do_set_status(tx, agent("maria"), c_dmitry, StatusRequest(status="resolved"))
        await conv.do_set_labels(tx, admin, c_elena, ["complaint", "delivery"])
        await conv.do_update_conversation(tx, admin, c_elena,
                                          ConversationUpdate(priority="high"))
        await conv.do_assign(tx, admin, c_sarah, AssignRequest(assignee_id=None, team_id=made["sales"]))
        c = await tx.session.get(Conversation, c_elena)
        assert c is not None
        await do_update_contact(tx, admin, c.contact_id, ContactUpdate(
            manager_id=users["anna"].id, attributes={"segment": "vip", "city": "Москва"}))
        c2 = await tx.session.get(Conversation, c_ivan)
        assert c2 is not None
        await do_update_contact(tx, admin, c2.contact_id, ContactUpdate(attributes={"segment": "regular"}))
        await conv.do_set_status(tx, agent("john"), c_emily, StatusRequest(
            status="snoozed", snoozed_until=now() + dt.timedelta(days=1), reason="bank answers tomorrow"))

    await db.write(work)
    await db.write(lambda tx: seed_articles(tx, admin_user.id))
    flow_id: int | None = None
    if bot:
        # From now on every new conversation on the demo channel meets the bot (the seeded ones above predate it).
        flow, _ = await db.write(lambda tx: do_create_flow(tx, admin, FlowCreate(
            name="Default", description="Greeting, order status, offices, complaints, agent (Russian and English)",
            definition=demo_flow(), channel_ids=[made["channel"].id, webchat_id])))
        flow_id = flow.id
    if history:
        await _seed_history(rt, admin, made, users, webchat_id=webchat_id, flow_id=flow_id)


async def _seed_history(rt: Runtime, admin: Principal, made: dict[str, Any], users: dict[str, User], *,
                        webchat_id: int, flow_id: int | None) -> None:
    """A mobile-app channel, the standard SLA policy and ~90 days of past conversations."""
    async def setup(tx: Tx) -> Demo:
        mobile, _ = await do_create_channel(tx, admin, ChannelCreate(
            type="api", name="Mobile app (API)", team_id=made["support"], queue_id=made["channel"].queue_id), rt.box)
        policy = SlaPolicy(name="Standard", first_response_seconds=600, next_response_seconds=900,
                           resolution_seconds=4 * 3600, warn_percent=80)
        tx.session.add(policy)  # rating questions are on already (demo/service.py)
        await tx.session.flush()
        queues = {q.name: (q.id, q.team_id) for q in (await tx.session.execute(select(Queue))).scalars()}
        support = [(users[w].id, users[w].name) for w in ("anna", "john")]
        return Demo(queues=queues, agents={made["support"]: support, made["sales"]: [(users["maria"].id,
                                                                                      users["maria"].name)],
                                           0: support},
                    channels=[(webchat_id, "webchat", 50), (made["channel"].id, "api", 30), (mobile.id, "api", 20)],
                    flow_id=flow_id, policy_id=policy.id, first_response_seconds=600, resolution_seconds=4 * 3600)

    demo = await rt.db.write(setup)
    at = now()
    await rt.db.write(lambda tx: write_history(tx, demo, now=at))


def demo_flow() -> dict[str, Any]:
    """The shipped default flow with its hand-offs pointed at the demo's queues and skills."""
    defn = load_default()
    targets = {"new_order_handoff": ("Orders", ["orders"]), "complaint_handoff": ("General support", ["complaints"]),
               "agent": ("General support", [])}
    for node_id, (queue, skills) in targets.items():
        defn["nodes"][node_id] = {**defn["nodes"][node_id], "queue": queue, "skills": skills}
    return defn


async def _seed_integrations(rt: Runtime, crm_url: str | None, events_url: str | None) -> None:
    """The CRM card against the demo CRM, and an event subscription to the demo's event log."""
    from kommutator.crm.models import CrmSetting
    from kommutator.demo.integrator import DEMO_EVENTS_SECRET
    from kommutator.subscriptions.actions import do_create_subscription
    from kommutator.subscriptions.schemas import SubscriptionCreate

    async def job(tx: Tx) -> None:
        admin_id = await tx.session.scalar(select(User.id).where(User.email == DEMO_USERS[0][0]))
        admin = Principal(user_id=int(admin_id or 0), name="demo", role="admin", team_ids=frozenset())
        if crm_url:
            tx.session.add(CrmSetting(id=1, url=crm_url, enabled=True, ttl_seconds=3600, timeout_seconds=3,
                                      set_manager=True, secret_encrypted=rt.box.encrypt({"secret": DEMO_EVENTS_SECRET}),
                                      updated_at=now()))
        if events_url:
            await do_create_subscription(tx, admin, SubscriptionCreate(
                name="Demo CRM", url=events_url,
                event_types=["conversation.created", "conversation.assigned", "conversation.resolved",
                             "rating.created", "bot.session_finished", "sla.breached"]),
                rt.box, secret=DEMO_EVENTS_SECRET)

    await rt.db.write(job)

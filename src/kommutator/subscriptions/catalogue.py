"""The public event types a subscription may ask for, and how the core's domain events become them.

One place to add an event type: a line in ``TYPES`` (with its description in both languages) and its case in
``public_events``. Payloads are filled in when they are sent (``payloads.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kommutator.events import (
    AlertRaised,
    CampaignStatusChanged,
    ContactChanged,
    ConversationCreated,
    ConversationUpdated,
    Event,
    MessageCreated,
    MessageStatusChanged,
    NotificationStatusChanged,
    RatingRecorded,
)

# Public type -> (English, Russian) description, shown in the API, the admin screen and docs/subscriptions.md.
TYPES: dict[str, tuple[str, str]] = {
    "conversation.created": ("A conversation started (a customer wrote, or the company wrote first).",
                             "Начат диалог (написал клиент или компания написала первой)."),
    "conversation.assigned": ("A conversation was given to an agent who had none.",
                              "Диалог назначен оператору (до этого был без исполнителя)."),
    "conversation.transferred": ("A conversation moved from one agent to another.",
                                 "Диалог передан от одного оператора другому."),
    "conversation.unassigned": ("A conversation lost its agent (back to the queue).",
                                "У диалога снят исполнитель (вернулся в очередь)."),
    "conversation.resolved": ("A conversation was resolved (by an agent, the bot or automatically).",
                              "Диалог решён (оператором, ботом или автоматически)."),
    "conversation.reopened": ("A resolved conversation was opened again.", "Решённый диалог открыт снова."),
    "message.created": ("A message was written in a conversation (customer, agent, bot; not private notes).",
                        "В диалоге появилось сообщение (клиента, оператора, бота; кроме внутренних заметок)."),
    "message.status_changed": ("An outgoing message was sent, delivered, read or failed.",
                               "Исходящее сообщение отправлено, доставлено, прочитано или не доставлено."),
    "rating.created": ("A customer rated a conversation (and again when a comment follows).",
                       "Клиент оценил диалог (и ещё раз, когда добавил комментарий)."),
    "bot.session_finished": ("The bot finished with a customer: solved it or handed over, with its trail.",
                             "Бот закончил работу с клиентом: решил вопрос или передал оператору; с историей шагов."),
    "contact.created": ("A customer profile was created.", "Создан профиль клиента."),
    "contact.updated": ("A customer profile changed (fields, identities, manager).",
                        "Изменён профиль клиента (поля, идентификаторы, менеджер)."),
    "contact.merged": ("Two customer profiles were merged into one.", "Два профиля клиента объединены в один."),
    "contact.deleted": ("A customer profile was erased.", "Профиль клиента удалён."),
    "sla.breached": ("A service-level deadline was missed.", "Нарушен срок по стандарту обслуживания (SLA)."),
    "alert.raised": ("Another quality alert was raised (negative rating, channel failing, …).",
                     "Поднята другая тревога качества (плохая оценка, сбой канала, …)."),
    "notification.status_changed": ("A notification (notifications API) went out on one of its channels, or "
                                    "failed on all of them.",
                                    "Уведомление (API уведомлений) отправлено по одному из каналов или не "
                                    "доставлено ни по одному."),
    "campaign.status_changed": ("A campaign started, paused, resumed, was cancelled or finished; with its figures.",
                                "Рассылка запущена, приостановлена, возобновлена, отменена или завершена; "
                                "с её цифрами."),
}

TEST_TYPE = "subscription.test"  # sent by "Send test event"; never subscribed to


@dataclass(frozen=True)
class Public:
    """One public event: its type, the key that orders it, and what it says now."""

    type: str
    order_key: str
    data: dict[str, Any]


def _conversation(ev: ConversationCreated | ConversationUpdated | MessageCreated | MessageStatusChanged
                  | RatingRecorded) -> dict[str, Any]:
    return {"conversation_id": ev.conversation_id, "team_id": ev.team_id, "assignee_id": ev.assignee_id}


def _pair(changes: dict[str, Any], key: str) -> tuple[Any, Any] | None:
    value = changes.get(key)
    if isinstance(value, list | tuple) and len(value) == 2:
        return value[0], value[1]
    return None


def public_events(ev: Event) -> list[Public]:
    """The public events one domain event makes (often none)."""
    if isinstance(ev, ConversationCreated):
        key = f"conversation:{ev.conversation_id}"
        return [Public("conversation.created", key, {**_conversation(ev), "contact_id": ev.contact_id,
                                                      "status": ev.status})]
    if isinstance(ev, ConversationUpdated):
        return _conversation_updated(ev)
    if isinstance(ev, MessageCreated):
        if ev.message_kind != "text":  # private notes and timeline events stay inside
            return []
        return [Public("message.created", f"conversation:{ev.conversation_id}",
                       {**_conversation(ev), "message_id": ev.message_id, "direction": ev.direction,
                        "sender_type": ev.sender_type, "channel_id": ev.channel_id})]
    if isinstance(ev, MessageStatusChanged):
        return [Public("message.status_changed", f"conversation:{ev.conversation_id}",
                       {**_conversation(ev), "message_id": ev.message_id, "status": ev.status,
                        "reason": ev.reason, "channel_id": ev.channel_id})]
    if isinstance(ev, RatingRecorded):
        return [Public("rating.created", f"conversation:{ev.conversation_id}",
                       {**_conversation(ev), "rating_id": ev.rating_id, "contact_id": ev.contact_id,
                        "scale": ev.scale, "score": ev.score, "comment": ev.comment})]
    if isinstance(ev, ContactChanged):
        kind = {"created": "contact.created", "merged": "contact.merged", "deleted": "contact.deleted"}.get(
            ev.action, "contact.updated")
        data: dict[str, Any] = {"contact_id": ev.contact_id, "action": ev.action}
        if ev.merged_into is not None:
            data["merged_into"] = ev.merged_into
        return [Public(kind, f"contact:{ev.merged_into or ev.contact_id}" if kind == "contact.merged"
                       else f"contact:{ev.contact_id}", data)]
    if isinstance(ev, NotificationStatusChanged):
        return [Public("notification.status_changed", f"notification:{ev.notification_id}",
                       {"notification_id": ev.notification_id, "contact_id": ev.contact_id, "status": ev.status})]
    if isinstance(ev, CampaignStatusChanged):
        return [Public("campaign.status_changed", f"campaign:{ev.campaign_id}",
                       {"campaign_id": ev.campaign_id, "status": ev.status})]
    if isinstance(ev, AlertRaised):
        kind = "sla.breached" if ev.alert_kind == "sla.breach" else "alert.raised"
        key = f"conversation:{ev.conversation_id}" if ev.conversation_id else f"alert:{ev.alert_id}"
        return [Public(kind, key, {"alert_id": ev.alert_id, "alert_kind": ev.alert_kind, "severity": ev.severity,
                                   "conversation_id": ev.conversation_id, "team_id": ev.team_id,
                                   "target": ev.target})]
    return []


def _conversation_updated(ev: ConversationUpdated) -> list[Public]:
    key = f"conversation:{ev.conversation_id}"
    base = {**_conversation(ev), "status": ev.status}
    out: list[Public] = []
    status = _pair(ev.changes, "status")
    if status and status[0] == "bot" and status[1] != "bot":
        out.append(Public("bot.session_finished", key, {**base, "outcome": "resolved" if status[1] == "resolved"
                                                        else "handoff"}))
    assignee = _pair(ev.changes, "assignee_id")
    if assignee and assignee[0] != assignee[1]:
        before, after = assignee
        kind = ("conversation.assigned" if before is None else
                "conversation.unassigned" if after is None else "conversation.transferred")
        out.append(Public(kind, key, {**base, "from_assignee_id": before, "to_assignee_id": after}))
    if status and status[1] == "resolved" and status[0] != "resolved":
        out.append(Public("conversation.resolved", key, {**base, "resolved_by": ev.changes.get("resolved_by", "")}))
    elif status and status[0] == "resolved" and status[1] != "resolved":
        out.append(Public("conversation.reopened", key, base))
    return out


def kinds_for(types: set[str]) -> tuple[type[Event], ...]:
    """The domain event classes that can make any of ``types`` (the journal looks only at those)."""
    by_type: dict[str, tuple[type[Event], ...]] = {
        "conversation.created": (ConversationCreated,),
        "message.created": (MessageCreated,), "message.status_changed": (MessageStatusChanged,),
        "rating.created": (RatingRecorded,), "sla.breached": (AlertRaised,), "alert.raised": (AlertRaised,),
        "notification.status_changed": (NotificationStatusChanged,),
        "campaign.status_changed": (CampaignStatusChanged,),
    }
    kinds: set[type[Event]] = set()
    for t in types:
        if t.startswith("contact."):
            kinds.add(ContactChanged)
        elif t.startswith("conversation.") or t == "bot.session_finished":
            kinds.add(ConversationUpdated)
        kinds.update(by_type.get(t, ()))
    return tuple(sorted(kinds, key=lambda k: k.__name__))

"""Ask the customer to rate a resolved conversation, and act on the rating (alert, thanks, comment question)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import or_, select

from kommutator.channels.models import Channel
from kommutator.clock import now
from kommutator.contacts.models import Contact
from kommutator.conversations.automatic import do_send_automatic
from kommutator.conversations.models import Conversation, Message, Transition
from kommutator.db import Tx
from kommutator.events import RatingRecorded
from kommutator.quality.alerts import do_raise_alert, rule_for
from kommutator.quality.models import CsatSetting, QualityState, Rating
from kommutator.quality.texts import CSAT_LABELS, both, lang_of, one, text

ASK_WITHIN = dt.timedelta(hours=24)  # a conversation resolved longer ago is not asked any more (after downtime)
DEFAULT_NEGATIVE = {"csat": 2, "nps": 6}


async def setting_for(tx: Tx, channel_id: int | None) -> CsatSetting | None:
    """The channel's own setting, else the default one (channel_id None); None: customers are not asked."""
    rows = (await tx.session.execute(select(CsatSetting).where(
        or_(CsatSetting.channel_id == channel_id, CsatSetting.channel_id.is_(None))))).scalars().all()
    own = [r for r in rows if r.channel_id is not None]
    chosen = own or list(rows)
    return chosen[0] if chosen else None


async def _resolved_automatically(tx: Tx, conv: Conversation) -> bool:
    """Resolved by the bot or the system: no agent ever replied and nobody resolved it by hand."""
    replied = await tx.session.scalar(select(Message.id).where(
        Message.conversation_id == conv.id, Message.sender_type == "agent", Message.direction == "out").limit(1))
    if replied is not None:
        return False
    by = await tx.session.scalar(select(Transition.actor_user_id).where(
        Transition.conversation_id == conv.id, Transition.to_status == "resolved")
        .order_by(Transition.id.desc()).limit(1))
    return by is None


async def do_ask_rating(tx: Tx, conv: Conversation, state: QualityState, *, resolved_by_bot: bool = False) -> bool:
    """Ask once per conversation, in the customer's channel and language; True when the question went out."""
    if state.csat_state or conv.status != "resolved" or conv.resolved_at is None:
        return False
    if conv.merged_into_id is not None:  # folded into another conversation (conversations/fold.py): not over
        state.csat_state = "skipped"
        return False
    if now() - conv.resolved_at > ASK_WITHIN:
        return False
    setting = await setting_for(tx, conv.last_inbound_channel_id)
    if setting is None or not setting.enabled:
        return False
    if not setting.ask_after_bot and (resolved_by_bot or await _resolved_automatically(tx, conv)):
        state.csat_state = "skipped"
        return False
    contact = await tx.session.get(Contact, conv.contact_id)
    language = contact.language if contact else None
    if setting.scale == "nps":
        question, buttons = text("nps.question", language), tuple((f"nps:{n}", str(n)) for n in range(11))
        channel = await tx.session.get(Channel, conv.last_inbound_channel_id) if conv.last_inbound_channel_id else None
        if channel is not None and channel.type == "whatsapp":
            buttons = ()  # WhatsApp offers at most three reply buttons; the question says to answer 0-10
    else:
        labels = CSAT_LABELS[lang_of(language)]
        question, buttons = text("csat.question", language), tuple((f"csat:{n}", labels[n - 1]) for n in range(1, 6))
    msg = await do_send_automatic(tx, conv, question, buttons=buttons, purpose="csat")
    if msg is None:
        state.csat_state = "skipped"
        return False
    state.csat_state, state.csat_scale, state.csat_asked_at, state.csat_message_id = (
        "asked", setting.scale, now(), msg.id)
    state.updated_at = now()
    return True


def is_negative(rating: Rating, threshold: int | None) -> bool:
    if rating.scale == "nps":
        return rating.score <= DEFAULT_NEGATIVE["nps"]
    return rating.score <= (threshold if threshold is not None else DEFAULT_NEGATIVE["csat"])


async def do_follow_up(tx: Tx, conv: Conversation, state: QualityState) -> Rating | None:
    """After a rating (or its comment) came in: alert on a negative one, thank, maybe ask for a comment."""
    if state.csat_state not in ("rated", "commented"):
        return None
    rating = await tx.session.scalar(select(Rating).where(Rating.conversation_id == conv.id))
    if rating is None:
        return None
    contact = await tx.session.get(Contact, conv.contact_id)
    language = contact.language if contact else None
    if state.csat_state == "rated":
        rule = await rule_for(tx, kind="csat.negative", team_id=conv.team_id)
        if is_negative(rating, rule.threshold if rule else None):
            top = 10 if rating.scale == "nps" else 5
            body = both("csat.negative", conversation_id=conv.id, score=rating.score, top=top)
            if rating.comment:
                body += f"\n«{rating.comment}»"
            said = f"\n«{rating.comment}»" if rating.comment else ""

            def render(lang: str) -> tuple[str, str]:
                own = one("csat.negative", lang, conversation_id=conv.id, score=rating.score, top=top)
                return own, own + said

            await do_raise_alert(tx, kind="csat.negative", title=body.split("\n")[0], body=body, render=render,
                                 conversation_id=conv.id, team_id=conv.team_id, agent_id=rating.agent_id,
                                 data={"rating_id": rating.id, "score": rating.score, "scale": rating.scale})
        setting = await setting_for(tx, conv.last_inbound_channel_id)
        if setting is not None and setting.ask_comment and not rating.comment:
            await do_send_automatic(tx, conv, text("csat.comment", language), purpose="csat_comment")
            state.csat_state = "comment"
        elif rating.comment:  # the comment came with the score, or right after it
            await do_send_automatic(tx, conv, text("csat.thanks_comment", language), purpose="csat_thanks")
            state.csat_state = "done"
        else:
            await do_send_automatic(tx, conv, text("csat.thanks", language), purpose="csat_thanks")
            state.csat_state = "done"
    else:
        await do_send_automatic(tx, conv, text("csat.thanks_comment", language), purpose="csat_thanks")
        state.csat_state = "done"
    state.updated_at = now()
    tx.publish(RatingRecorded(conversation_id=conv.id, team_id=conv.team_id, assignee_id=conv.assignee_id,
                              rating_id=rating.id, contact_id=rating.contact_id, scale=rating.scale,
                              score=rating.score, comment=rating.comment))
    return rating

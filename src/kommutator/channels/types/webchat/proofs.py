"""The visitor proves an email address or phone number from the widget: ask for a code, type it back
(outbound/proofs.py does the work; the code goes by email or SMS through the outbox after the request commits)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from fastapi import Request
from pydantic import Field
from sqlalchemy import select

from kommutator.channels.types.webchat.api import Authorization, _chat, _rt, router
from kommutator.channels.types.webchat.schemas import WidgetProofChecked, WidgetProofSent
from kommutator.channels.types.webchat.visitors import CHANNEL_TYPE, authenticate_visitor, check_rate, contact_of
from kommutator.common.schemas import Id, Strict
from kommutator.contacts.codes import code_matches, hash_code, mask, new_code
from kommutator.contacts.models import Identity
from kommutator.contacts.verified import normal_email, normal_phone
from kommutator.conversations.models import Conversation
from kommutator.db import Tx
from kommutator.outbound import proofs
from kommutator.outbound.texts import problem

CODE = r"^\s*\d{3}[\s-]?\d{3}\s*$"


class ProofRequest(Strict):
    value: str = Field(min_length=3, max_length=254,
                       description="An email address, or a phone number in international form (+7 912 345-67-89)")
    language: Literal["en", "ru"] | None = Field(default=None, description="The language of the code's text and of "
                                                                         "refusals; default the visitor's")


class ProofConfirm(Strict):
    code: str = Field(pattern=CODE, description="The six digits received")
    language: Literal["en", "ru"] | None = None


def _language(asked: str | None, visitor_language: str | None) -> str:
    return asked or ("ru" if visitor_language == "ru" else "en")


@router.post("/widget/{channel_id}/verify", status_code=202, response_model=WidgetProofSent)
async def request_code(request: Request, channel_id: Id, body: ProofRequest,
                       authorization: Authorization = None) -> dict[str, Any]:
    """Send a one-time code to the visitor's email (through the email channel) or phone (by SMS). 409 before the
    visitor's first message; 422 for a value that is neither, or no channel to carry it; 429 past the hourly
    limits."""
    rt = _rt(request)
    chat = await _chat(request, channel_id)
    visitor = await authenticate_visitor(rt, chat, authorization)
    await check_rate(rt, "message", visitor.external_id)
    language = _language(body.language, visitor.language)
    email, phone = normal_email(body.value), normal_phone(body.value)
    kind: Literal["email", "phone"] = "email" if email else "phone"
    value = email or phone
    if value is None:
        raise problem(422, "proof_value_invalid", language, value=body.value[:60])
    contact_id = await contact_of(rt, visitor)
    async with rt.db.read() as s:
        conversation_id = None if contact_id is None else await s.scalar(
            select(Conversation.id).where(Conversation.contact_id == contact_id)
            .order_by(Conversation.id.desc()).limit(1))
    if contact_id is None or conversation_id is None:
        raise problem(409, "proof_needs_conversation", language)
    code = new_code()
    code_hash = hash_code(code)  # tens of milliseconds: before the write job, not on the writer

    async def job(tx: Tx) -> dt.datetime:
        proof = await proofs.do_send_code(tx, contact_id=contact_id, conversation_id=conversation_id, kind=kind,
                                          value=value, code=code, code_hash=code_hash, language=language,
                                          source="widget")
        return proof.expires_at

    expires_at = await rt.db.write(job)
    return {"kind": kind, "sent_to": mask(kind, value),
            "expires_at": expires_at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")}


@router.post("/widget/{channel_id}/verify/confirm", response_model=WidgetProofChecked)
async def confirm_code(request: Request, channel_id: Id, body: ProofConfirm,
                       authorization: Authorization = None) -> dict[str, Any]:
    """Type the code back: 200 when it is right (the value is now the visitor's, verified); 422
    ``proof_code_wrong`` (with ``attempts_left``) or ``proof_failed`` after too many; 410 ``proof_expired``;
    409 ``proof_not_found`` when no code waits."""
    rt = _rt(request)
    chat = await _chat(request, channel_id)
    visitor = await authenticate_visitor(rt, chat, authorization)
    await check_rate(rt, "message", visitor.external_id)
    language = _language(body.language, visitor.language)
    contact_id = await contact_of(rt, visitor)
    async with rt.db.read() as s:
        pending = None if contact_id is None else await proofs.pending_proof(s, contact_id)
        identity_id = await s.scalar(select(Identity.id).where(
            Identity.channel_type == CHANNEL_TYPE, Identity.external_id == visitor.external_id))
    if contact_id is None or pending is None:
        raise problem(409, "proof_not_found", language)
    matches = code_matches(body.code, pending.code_hash)  # outside the write job, as the hash is slow on purpose
    checked = await rt.db.write(lambda tx: proofs.do_check_code(
        tx, contact_id=contact_id, code_hash=pending.code_hash, matches=matches, identity_id=identity_id))
    if checked.status == "verified":
        return {"verified": True, "kind": pending.kind, "value": mask(pending.kind, pending.value)}
    if checked.status == "wrong":
        err = problem(422, "proof_code_wrong", language, left=checked.attempts_left)
        err.extra["attempts_left"] = checked.attempts_left
        raise err
    if checked.status == "expired":
        raise problem(410, "proof_expired", language)
    if checked.status == "failed":
        raise problem(422, "proof_failed", language)
    raise problem(409, "proof_not_found", language)

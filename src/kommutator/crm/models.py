"""The CRM integration's settings (one row) and what the CRM said about each contact (the cached card)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from kommutator.clock import now
from kommutator.db import Base, BigId, JsonType


class CrmSetting(Base):
    __tablename__ = "crm_settings"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)  # always 1
    url: Mapped[str] = mapped_column(String(2000), default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    secret_encrypted: Mapped[str] = mapped_column(Text, default="")  # signs requests (Standard Webhooks)
    ttl_seconds: Mapped[int] = mapped_column(Integer, default=3600)
    timeout_seconds: Mapped[int] = mapped_column(Integer, default=3)
    set_manager: Mapped[bool] = mapped_column(Boolean, default=True)  # a manager_email the CRM names becomes
    updated_at: Mapped[dt.datetime] = mapped_column(default=now)      # the contact's personal manager


class CrmCard(Base):
    __tablename__ = "crm_cards"

    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True)
    status: Mapped[str] = mapped_column(String(10), default="ok")  # ok, not_found, error, timeout
    data: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    error: Mapped[str] = mapped_column(Text, default="")
    fetched_at: Mapped[dt.datetime] = mapped_column(default=now)

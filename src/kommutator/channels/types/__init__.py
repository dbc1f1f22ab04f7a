"""One package per channel type; a new type is a new package here and one line in ``register_all``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def register_all(register: Callable[[Any], Any]) -> None:
    """Register every channel type (called once by channels/registry.py ``discover``, from app.py)."""
    from kommutator.channels.types.api.adapter import ApiChannel
    from kommutator.channels.types.email.adapter import EmailChannel
    from kommutator.channels.types.sms.adapter import SmsChannel
    from kommutator.channels.types.telegram.adapter import TelegramChannel
    from kommutator.channels.types.vk.adapter import VkChannel
    from kommutator.channels.types.webchat.adapter import WebchatChannel
    from kommutator.channels.types.whatsapp.adapter import WhatsAppChannel

    for adapter in (ApiChannel, EmailChannel, SmsChannel, TelegramChannel, VkChannel, WebchatChannel,
                    WhatsAppChannel):
        register(adapter)

"""The WhatsApp Cloud API channel."""

from kommutator.channels.types.whatsapp.adapter import WhatsAppChannel, WhatsAppCredentials, WhatsAppSettings

__all__ = ["WhatsAppChannel", "WhatsAppCredentials", "WhatsAppSettings"]

"""SMS through Twilio or a Twilio-compatible gateway (signed form posts in, Messages.json out)."""

from kommutator.channels.types.sms.adapter import SmsChannel

__all__ = ["SmsChannel"]

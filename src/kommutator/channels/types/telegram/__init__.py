"""The Telegram Bot API channel: webhook or long polling in, sendMessage/sendDocument out."""

from kommutator.channels.types.telegram.adapter import TelegramChannel, TelegramCredentials, TelegramSettings

__all__ = ["TelegramChannel", "TelegramCredentials", "TelegramSettings"]

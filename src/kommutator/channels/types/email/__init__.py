"""The email channel: a support address receiving mail (SMTP listener or IMAP polling), replying over SMTP."""

from kommutator.channels.types.email.adapter import EmailChannel, EmailServices
from kommutator.channels.types.email.imap import ImapPollError, PollResult, poll_once
from kommutator.channels.types.email.smtp_server import SmtpListener

__all__ = ["EmailChannel", "EmailServices", "ImapPollError", "PollResult", "SmtpListener", "poll_once"]

"""Outbound connections: one guard (``net.guard``) that every protocol — HTTP, SMTP, IMAP — connects through."""

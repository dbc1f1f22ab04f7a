"""Website chat: the embeddable widget, its visitor endpoints and socket."""

from kommutator.channels.types.webchat import adapter as adapter

__all__ = ["adapter"]

"""Alert destinations (plug-ins; the interface is ``base.py``). A new destination is a module here with an
``AlertDestination`` subclass and one line in ``register_all``."""

from __future__ import annotations

from kommutator.quality.destinations.base import register


def register_all() -> None:
    from kommutator.quality.destinations.email import EmailDestination
    from kommutator.quality.destinations.telegram import TelegramDestination
    from kommutator.quality.destinations.webhook import WebhookDestination

    register(EmailDestination())
    register(TelegramDestination())
    register(WebhookDestination())

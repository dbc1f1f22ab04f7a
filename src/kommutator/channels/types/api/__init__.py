"""The generic API channel: integrators post customer messages with the channel's token."""

from kommutator.channels.types.api.adapter import ApiChannel

__all__ = ["ApiChannel"]

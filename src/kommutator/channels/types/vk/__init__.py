"""VK community messages (Callback API in, messages.send out)."""

from kommutator.channels.types.vk.adapter import VkChannel

__all__ = ["VkChannel"]

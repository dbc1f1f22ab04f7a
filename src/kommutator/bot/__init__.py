"""The ICR bot: natural-language understanding (``bot.nlu``) for menus, handoff requests and intents."""

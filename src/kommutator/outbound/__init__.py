"""The company writes first: agents start conversations, integrators send notifications, templates, fallbacks."""

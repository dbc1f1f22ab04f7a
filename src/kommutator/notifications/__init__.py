"""Notifications to people in the workspace: 'served automatically', alerts, assignments."""

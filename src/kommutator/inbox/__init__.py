"""What each agent has read: per-user read marks and the unread counts of the workspace's list."""

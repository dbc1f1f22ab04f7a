"""SLA policies, the clocks that measure a conversation against them, and their deadline timers."""

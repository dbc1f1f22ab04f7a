"""Event subscriptions: integrators (a CRM, a data warehouse) hear what happens, signed, retried, in order.

``catalogue`` names the public event types and turns the core's domain events into them; ``journal`` writes one
delivery row per subscribed event inside the transaction that made it (nothing is lost, nothing is sent for a
change that was rolled back); ``worker`` sends them (Standard Webhooks signatures, the outbound guard, the
outbox's retry policy, one conversation's events in order); ``api`` manages subscriptions and their logs.
"""

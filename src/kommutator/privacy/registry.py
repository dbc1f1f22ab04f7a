"""Every table of the schema, classified: how its rows about one contact are found, or why it holds none.

``HOLDINGS`` maps a table to the rows that concern a person, as a filter on one column by ids found before it
(the contact and the contacts merged into it -> their conversations -> messages -> …). ``UNRELATED`` names the
tables that hold nothing about a customer, each with the reason. tests/test_privacy.py fails when a table is in
neither: a new table must say here whether it holds personal data.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Holding:
    column: str  # the column of this table that is filtered
    # What ids it is filtered by: "contact", "conversation", "message", "alert", "outreach", "identity:webchat",
    # "subject:contact" (audit log entries about the contact), "order_key" (event deliveries).
    by: str


# In dependency order: each "by" is found from the tables above it.
HOLDINGS: dict[str, Holding] = {
    "contacts": Holding("id", "contact"),
    "contact_identities": Holding("contact_id", "contact"),
    "contact_consents": Holding("contact_id", "contact"),
    "contact_channel_scores": Holding("contact_id", "contact"),
    "crm_cards": Holding("contact_id", "contact"),
    "identity_proofs": Holding("contact_id", "contact"),
    "webchat_visitors": Holding("external_id", "identity:webchat"),
    "outreach": Holding("contact_id", "contact"),
    "campaign_recipients": Holding("contact_id", "contact"),
    "outreach_attempts": Holding("outreach_id", "outreach"),
    "conversations": Holding("contact_id", "contact"),
    "conversation_labels": Holding("conversation_id", "conversation"),
    "conversation_transitions": Holding("conversation_id", "conversation"),
    "conversation_skills": Holding("conversation_id", "conversation"),
    "conversation_reads": Holding("conversation_id", "conversation"),
    "messages": Holding("conversation_id", "conversation"),
    "attachments": Holding("message_id", "message"),
    "inbound_events": Holding("message_id", "message"),
    "outbox": Holding("message_id", "message"),
    "bot_sessions": Holding("conversation_id", "conversation"),
    "ratings": Holding("conversation_id", "conversation"),
    "report_facts": Holding("conversation_id", "conversation"),
    "report_intents": Holding("conversation_id", "conversation"),
    "sla_clocks": Holding("conversation_id", "conversation"),
    "standard_violations": Holding("conversation_id", "conversation"),
    "quality_conversations": Holding("conversation_id", "conversation"),
    "quality_alerts": Holding("conversation_id", "conversation"),
    "alert_deliveries": Holding("alert_id", "alert"),
    "assist_suggestion_events": Holding("conversation_id", "conversation"),
    "notifications": Holding("conversation_id", "conversation"),
    "event_deliveries": Holding("order_key", "order_key"),
    "audit_log": Holding("subject_id", "subject:contact"),
}

UNRELATED: dict[str, str] = {
    "users": "the team's own people, not customers",
    "teams": "organisation", "team_members": "organisation", "skills": "organisation",
    "user_skills": "organisation", "queues": "organisation",
    "auth_sessions": "agents' logins", "api_tokens": "agents' and integrations' tokens",
    "channels": "the company's own accounts", "channel_state": "provider cursors of the company's accounts",
    "canned_responses": "the company's texts", "knowledge_articles": "the company's texts",
    "message_templates": "the company's texts",
    "bot_flows": "configuration", "bot_flow_versions": "configuration", "bot_flow_channels": "configuration",
    "bot_intents": "configuration (example phrases written by the business)",
    "bot_intent_models": "trained from the business's example phrases",
    "sla_policies": "configuration", "communication_standards": "configuration", "alert_rules": "configuration",
    "csat_settings": "configuration",
    "report_hourly": "aggregates over many conversations; no row identifies a person",
    "report_daily": "aggregates over many conversations; no row identifies a person",
    "campaigns": "the company's texts and schedules", "segments": "rules, not people",
    "report_presence": "agents' presence",
    "channel_health": "the company's channels' health",
    "assist_suggestion_stats": "counts per suggestion, over many conversations",
    "timers": "due times naming a conversation by id only; removed with it",
    "idempotency_keys": "a client's retries of its own requests, deleted after 24 hours",
    "event_subscriptions": "configuration", "crm_settings": "configuration", "retention_policies": "configuration",
    "audit_retention": "the audit log's cut-off date",
    "event_delivery_attempts": "receivers' answers to deliveries (status codes and excerpts)",
    "webchat_invitation_stats": "counts per invitation of a channel, over many visitors",
    "processes": "the server processes' heartbeats (workers/owners.py)",
}

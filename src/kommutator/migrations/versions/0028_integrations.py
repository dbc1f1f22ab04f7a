"""Integrations and personal data. Event subscriptions: subscribed URLs, the deliveries owed to them and each
attempt (the delivery log). The CRM card: the integration's settings and each contact's cached answer.
Retention policies.
The audit log stays append-only but for one change: erasing a person pseudonymises the details of entries
(every other column unchanged, the new details marked "_pseudonymised").

Revision ID: 0028
Revises: 0024
Create Date: 2026-12-07 07:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from kommutator.db import BigId, JsonType, UtcDateTime

revision = "0028"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "event_subscriptions",
        sa.Column("id", BigId, nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("event_types", JsonType, nullable=False),
        sa.Column("secret_encrypted", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("disabled_reason", sa.String(20), nullable=False),
        sa.Column("failing_since", UtcDateTime(), nullable=True),
        sa.Column("last_success_at", UtcDateTime(), nullable=True),
        sa.Column("created_by_id", BigId, sa.ForeignKey(
            "users.id", ondelete="SET NULL", name="fk_event_subscriptions_created_by_id_users"), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_event_subscriptions"),
    )
    op.create_table(
        "event_deliveries",
        sa.Column("id", BigId, nullable=False),
        sa.Column("subscription_id", BigId, sa.ForeignKey(
            "event_subscriptions.id", ondelete="CASCADE", name="fk_event_deliveries_subscription_id_event_subscriptions"),
            nullable=False),
        sa.Column("event_id", sa.String(40), nullable=False),
        sa.Column("event_type", sa.String(40), nullable=False),
        sa.Column("order_key", sa.String(60), nullable=False),
        sa.Column("event", JsonType, nullable=False),
        sa.Column("occurred_at", UtcDateTime(), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UtcDateTime(), nullable=False),
        sa.Column("claimed_until", UtcDateTime(), nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("delivered_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_event_deliveries"),
    )
    op.create_index("ix_event_deliveries_due", "event_deliveries", ["status", "next_attempt_at"])
    op.create_index("ix_event_deliveries_order", "event_deliveries", ["subscription_id", "order_key", "status", "id"])
    op.create_index("ix_event_deliveries_log", "event_deliveries", ["subscription_id", "id"])
    op.create_table(
        "event_delivery_attempts",
        sa.Column("id", BigId, nullable=False),
        sa.Column("delivery_id", BigId, sa.ForeignKey(
            "event_deliveries.id", ondelete="CASCADE", name="fk_event_delivery_attempts_delivery_id_event_deliveries"),
            nullable=False),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("response_excerpt", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_event_delivery_attempts"),
    )
    op.create_index("ix_event_delivery_attempts_delivery_id", "event_delivery_attempts", ["delivery_id"])
    op.create_table(
        "crm_settings",
        sa.Column("id", BigId, nullable=False),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("secret_encrypted", sa.Text(), nullable=False),
        sa.Column("ttl_seconds", sa.Integer(), nullable=False),
        sa.Column("timeout_seconds", sa.Integer(), nullable=False),
        sa.Column("set_manager", sa.Boolean(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_crm_settings"),
    )
    op.create_table(
        "crm_cards",
        sa.Column("contact_id", BigId, sa.ForeignKey(
            "contacts.id", ondelete="CASCADE", name="fk_crm_cards_contact_id_contacts"), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("data", JsonType, nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("fetched_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("contact_id", name="pk_crm_cards"),
    )
    op.create_table(
        "retention_policies",
        sa.Column("id", BigId, nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("channel_id", BigId, sa.ForeignKey(
            "channels.id", ondelete="CASCADE", name="fk_retention_policies_channel_id_channels"), nullable=True),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("last_run_at", UtcDateTime(), nullable=True),
        sa.Column("last_removed", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_retention_policies"),
    )
    op.create_table(
        "audit_retention",
        sa.Column("id", BigId, nullable=False),
        sa.Column("keep_before", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_audit_retention"),
    )
    _audit_triggers(pseudonymise=True)


SAME = ("NEW.id = OLD.id AND NEW.at = OLD.at AND NEW.action = OLD.action AND NEW.subject_type = OLD.subject_type "
        "AND NEW.subject_id = OLD.subject_id AND NEW.ip = OLD.ip AND NEW.actor_user_id IS {same} OLD.actor_user_id "
        "AND NEW.actor_token_id IS {same} OLD.actor_token_id")


def _audit_triggers(*, pseudonymise: bool) -> None:
    """Append-only, but for two changes when ``pseudonymise``: details replaced by an erasure, and entries older
    than the audit retention's cut-off (``audit_retention.keep_before``, written by the retention run) deleted."""
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
        when = (f" WHEN NOT ({SAME.format(same='')} AND json_extract(NEW.detail, '$._pseudonymised') = 1)"
                if pseudonymise else "")
        op.execute(f"CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log{when} "
                   "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END")
        expired = (" WHEN OLD.at >= COALESCE((SELECT keep_before FROM audit_retention WHERE id = 1), '0001-01-01')"
                   if pseudonymise else "")
        op.execute(f"CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log{expired} "
                   "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END")
        return
    allowed = (f"IF TG_OP = 'UPDATE' AND {SAME.format(same='NOT DISTINCT FROM')} "  # noqa: S608  (constants)
               "AND (NEW.detail ->> '_pseudonymised') = 'true' THEN RETURN NEW; END IF; "
               "IF TG_OP = 'DELETE' AND OLD.at < (SELECT keep_before FROM audit_retention WHERE id = 1) "
               "THEN RETURN OLD; END IF; " if pseudonymise else "")
    op.execute("CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS "
               f"$$ BEGIN {allowed}RAISE EXCEPTION 'audit_log is append-only'; END $$")


def downgrade() -> None:
    _audit_triggers(pseudonymise=False)
    op.drop_table("audit_retention")
    op.drop_table("retention_policies")
    op.drop_table("crm_cards")
    op.drop_table("crm_settings")
    op.drop_index("ix_event_delivery_attempts_delivery_id", table_name="event_delivery_attempts")
    op.drop_table("event_delivery_attempts")
    op.drop_index("ix_event_deliveries_log", table_name="event_deliveries")
    op.drop_index("ix_event_deliveries_order", table_name="event_deliveries")
    op.drop_index("ix_event_deliveries_due", table_name="event_deliveries")
    op.drop_table("event_deliveries")
    op.drop_table("event_subscriptions")

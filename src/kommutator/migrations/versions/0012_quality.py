"""Quality: SLA policies and clocks, communication standards, ratings, alert rules, alerts and deliveries.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 11:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from kommutator.db import BigId, JsonType, UtcDateTime

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('sla_policies',
    sa.Column('id', BigId, nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('queue_ids', JsonType, nullable=False),
    sa.Column('channel_types', JsonType, nullable=False),
    sa.Column('channel_ids', JsonType, nullable=False),
    sa.Column('contact_attributes', JsonType, nullable=False),
    sa.Column('first_response_seconds', sa.Integer(), nullable=True),
    sa.Column('next_response_seconds', sa.Integer(), nullable=True),
    sa.Column('resolution_seconds', sa.Integer(), nullable=True),
    sa.Column('clock', sa.String(length=8), nullable=False),
    sa.Column('business_hours', JsonType, nullable=True),
    sa.Column('warn_percent', sa.Integer(), nullable=False),
    sa.Column('priority_factors', JsonType, nullable=False),
    sa.Column('notify_user_ids', JsonType, nullable=False),
    sa.Column('notify_emails', JsonType, nullable=False),
    sa.Column('created_at', UtcDateTime(), nullable=False),
    sa.Column('updated_at', UtcDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sla_policies')),
    sa.UniqueConstraint('name', name=op.f('uq_sla_policies_name'))
    )
    op.create_table('alert_rules',
    sa.Column('id', BigId, nullable=False),
    sa.Column('team_id', BigId, nullable=True),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('to_agent', sa.Boolean(), nullable=False),
    sa.Column('to_supervisors', sa.Boolean(), nullable=False),
    sa.Column('user_ids', JsonType, nullable=False),
    sa.Column('emails', JsonType, nullable=False),
    sa.Column('telegram_chat_id', sa.String(length=64), nullable=False),
    sa.Column('telegram_token', sa.Text(), nullable=False),
    sa.Column('threshold', sa.Integer(), nullable=True),
    sa.Column('created_at', UtcDateTime(), nullable=False),
    sa.Column('updated_at', UtcDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['team_id'], ['teams.id'], name=op.f('fk_alert_rules_team_id_teams'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alert_rules'))
    )
    op.create_index(op.f('ix_alert_rules_team_id'), 'alert_rules', ['team_id'], unique=False)
    op.create_table('communication_standards',
    sa.Column('id', BigId, nullable=False),
    sa.Column('team_id', BigId, nullable=True),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('greeting_required', sa.Boolean(), nullable=False),
    sa.Column('greetings', JsonType, nullable=False),
    sa.Column('forbidden', JsonType, nullable=False),
    sa.Column('max_reply_gap_seconds', sa.Integer(), nullable=True),
    sa.Column('updated_at', UtcDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['team_id'], ['teams.id'], name=op.f('fk_communication_standards_team_id_teams'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_communication_standards')),
    sa.UniqueConstraint('team_id', name=op.f('uq_communication_standards_team_id'))
    )
    op.create_table('csat_settings',
    sa.Column('id', BigId, nullable=False),
    sa.Column('channel_id', BigId, nullable=True),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('scale', sa.String(length=4), nullable=False),
    sa.Column('ask_after_bot', sa.Boolean(), nullable=False),
    sa.Column('ask_comment', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['channel_id'], ['channels.id'], name=op.f('fk_csat_settings_channel_id_channels'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_csat_settings')),
    sa.UniqueConstraint('channel_id', name=op.f('uq_csat_settings_channel_id'))
    )
    op.create_table('quality_alerts',
    sa.Column('id', BigId, nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('severity', sa.String(length=8), nullable=False),
    sa.Column('conversation_id', BigId, nullable=True),
    sa.Column('team_id', sa.BigInteger(), nullable=True),
    sa.Column('agent_id', sa.BigInteger(), nullable=True),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('recipients', JsonType, nullable=False),
    sa.Column('data', JsonType, nullable=False),
    sa.Column('created_at', UtcDateTime(), nullable=False),
    sa.Column('acknowledged_by', sa.BigInteger(), nullable=True),
    sa.Column('acknowledged_at', UtcDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], name=op.f('fk_quality_alerts_conversation_id_conversations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_quality_alerts'))
    )
    op.create_index('ix_quality_alerts_conversation', 'quality_alerts', ['conversation_id'], unique=False)
    op.create_index('ix_quality_alerts_team', 'quality_alerts', ['team_id', 'id'], unique=False)
    op.create_table('quality_conversations',
    sa.Column('conversation_id', BigId, nullable=False),
    sa.Column('policy_id', sa.BigInteger(), nullable=True),
    sa.Column('checked_message_id', sa.BigInteger(), nullable=False),
    sa.Column('csat_state', sa.String(length=10), nullable=False),
    sa.Column('csat_scale', sa.String(length=4), nullable=False),
    sa.Column('csat_asked_at', UtcDateTime(), nullable=True),
    sa.Column('csat_message_id', sa.BigInteger(), nullable=True),
    sa.Column('updated_at', UtcDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], name=op.f('fk_quality_conversations_conversation_id_conversations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('conversation_id', name=op.f('pk_quality_conversations'))
    )
    op.create_table('ratings',
    sa.Column('id', BigId, nullable=False),
    sa.Column('conversation_id', BigId, nullable=False),
    sa.Column('contact_id', BigId, nullable=False),
    sa.Column('scale', sa.String(length=4), nullable=False),
    sa.Column('score', sa.Integer(), nullable=False),
    sa.Column('comment', sa.Text(), nullable=False),
    sa.Column('channel_id', sa.BigInteger(), nullable=True),
    sa.Column('agent_id', sa.BigInteger(), nullable=True),
    sa.Column('created_at', UtcDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_ratings_contact_id_contacts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], name=op.f('fk_ratings_conversation_id_conversations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ratings')),
    sa.UniqueConstraint('conversation_id', name=op.f('uq_ratings_conversation_id'))
    )
    op.create_index(op.f('ix_ratings_contact_id'), 'ratings', ['contact_id'], unique=False)
    op.create_table('sla_clocks',
    sa.Column('id', BigId, nullable=False),
    sa.Column('conversation_id', BigId, nullable=False),
    sa.Column('policy_id', BigId, nullable=True),
    sa.Column('target', sa.String(length=16), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('started_at', UtcDateTime(), nullable=False),
    sa.Column('target_seconds', sa.Integer(), nullable=False),
    sa.Column('business', sa.Boolean(), nullable=False),
    sa.Column('elapsed_seconds', sa.Integer(), nullable=False),
    sa.Column('counted_at', UtcDateTime(), nullable=True),
    sa.Column('due_at', UtcDateTime(), nullable=True),
    sa.Column('warn_at', UtcDateTime(), nullable=True),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('warned_at', UtcDateTime(), nullable=True),
    sa.Column('breached_at', UtcDateTime(), nullable=True),
    sa.Column('hit_at', UtcDateTime(), nullable=True),
    sa.Column('updated_at', UtcDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], name=op.f('fk_sla_clocks_conversation_id_conversations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['policy_id'], ['sla_policies.id'], name=op.f('fk_sla_clocks_policy_id_sla_policies'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sla_clocks')),
    sa.UniqueConstraint('conversation_id', 'target', 'seq', name=op.f('uq_sla_clocks_conversation_id_target_seq'))
    )
    op.create_index('ix_sla_clocks_open', 'sla_clocks', ['status', 'due_at'], unique=False)
    op.create_table('standard_violations',
    sa.Column('id', BigId, nullable=False),
    sa.Column('conversation_id', BigId, nullable=False),
    sa.Column('message_id', sa.BigInteger(), nullable=True),
    sa.Column('agent_id', sa.BigInteger(), nullable=True),
    sa.Column('team_id', sa.BigInteger(), nullable=True),
    sa.Column('rule', sa.String(length=20), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.Column('alert_id', sa.BigInteger(), nullable=True),
    sa.Column('created_at', UtcDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], name=op.f('fk_standard_violations_conversation_id_conversations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_standard_violations'))
    )
    op.create_index(op.f('ix_standard_violations_conversation_id'), 'standard_violations', ['conversation_id'], unique=False)
    op.create_index(op.f('ix_standard_violations_team_id'), 'standard_violations', ['team_id'], unique=False)
    op.create_table('alert_deliveries',
    sa.Column('id', BigId, nullable=False),
    sa.Column('alert_id', BigId, nullable=False),
    sa.Column('rule_id', sa.BigInteger(), nullable=True),
    sa.Column('channel', sa.String(length=10), nullable=False),
    sa.Column('target', sa.String(length=254), nullable=False),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', UtcDateTime(), nullable=False),
    sa.Column('claimed_until', UtcDateTime(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=False),
    sa.Column('sent_at', UtcDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['alert_id'], ['quality_alerts.id'], name=op.f('fk_alert_deliveries_alert_id_quality_alerts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alert_deliveries'))
    )
    op.create_index(op.f('ix_alert_deliveries_alert_id'), 'alert_deliveries', ['alert_id'], unique=False)
    op.create_index('ix_alert_deliveries_due', 'alert_deliveries', ['status', 'next_attempt_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_alert_deliveries_due', table_name='alert_deliveries')
    op.drop_index('ix_alert_deliveries_alert_id', table_name='alert_deliveries')
    op.drop_index('ix_standard_violations_team_id', table_name='standard_violations')
    op.drop_index('ix_standard_violations_conversation_id', table_name='standard_violations')
    op.drop_index('ix_sla_clocks_open', table_name='sla_clocks')
    op.drop_index('ix_ratings_contact_id', table_name='ratings')
    op.drop_index('ix_quality_alerts_team', table_name='quality_alerts')
    op.drop_index('ix_quality_alerts_conversation', table_name='quality_alerts')
    op.drop_index('ix_alert_rules_team_id', table_name='alert_rules')
    op.drop_table('alert_deliveries')
    op.drop_table('standard_violations')
    op.drop_table('sla_clocks')
    op.drop_table('ratings')
    op.drop_table('quality_conversations')
    op.drop_table('quality_alerts')
    op.drop_table('csat_settings')
    op.drop_table('communication_standards')
    op.drop_table('alert_rules')
    op.drop_table('sla_policies')

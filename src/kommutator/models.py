"""Import every model so the metadata (and Alembic) sees the whole schema."""

from kommutator.agents.models import Skill, Team, TeamMember, User, UserSkill
from kommutator.assist.models import SuggestionEvent, SuggestionStats
from kommutator.audit.models import AuditEntry
from kommutator.auth.models import ApiToken, AuthSession
from kommutator.bot.models import BotFlow, BotFlowChannel, BotFlowVersion, BotIntent, BotIntentModel, BotSession
from kommutator.canned.models import CannedResponse
from kommutator.channels.models import Channel, ChannelState
from kommutator.channels.types.webchat.models import WebchatInvitationStat, WebchatVisitor
from kommutator.common.models import IdempotencyKey
from kommutator.contacts.models import ChannelScore, Consent, Contact, Identity
from kommutator.contacts.proof_models import IdentityProof
from kommutator.conversations.models import Attachment, Conversation, ConversationLabel, Message, Transition
from kommutator.crm.models import CrmCard, CrmSetting
from kommutator.db import Base
from kommutator.inbox.models import ReadMark
from kommutator.ingest.models import InboundEvent
from kommutator.knowledge.models import Article
from kommutator.notifications.models import Notification
from kommutator.outbound.models import (
    Campaign,
    CampaignRecipient,
    MessageTemplate,
    NotificationAttempt,
    OutboundNotification,
    Segment,
)
from kommutator.privacy.models import AuditRetention, RetentionPolicy
from kommutator.quality.models import (
    AlertDelivery,
    AlertRule,
    CommunicationStandard,
    CsatSetting,
    QualityAlert,
    QualityState,
    Rating,
    SlaClock,
    SlaPolicy,
    StandardViolation,
)
from kommutator.queues.models import Queue
from kommutator.reports.models import PresenceChange, ReportDaily, ReportFact, ReportHourly
from kommutator.routing.models import ConversationSkill
from kommutator.subscriptions.models import Delivery, DeliveryAttempt, Subscription
from kommutator.workers.models import OutboxItem, Timer

__all__ = [
    "AlertDelivery",
    "AlertRule",
    "ApiToken",
    "Article",
    "Attachment",
    "AuditEntry",
    "AuditRetention",
    "AuthSession",
    "Base",
    "BotFlow",
    "BotFlowChannel",
    "BotFlowVersion",
    "BotIntent",
    "BotIntentModel",
    "BotSession",
    "Campaign",
    "CampaignRecipient",
    "CannedResponse",
    "Channel",
    "ChannelScore",
    "ChannelState",
    "CommunicationStandard",
    "Consent",
    "Contact",
    "Conversation",
    "ConversationLabel",
    "ConversationSkill",
    "CrmCard",
    "CrmSetting",
    "CsatSetting",
    "Delivery",
    "DeliveryAttempt",
    "IdempotencyKey",
    "Identity",
    "IdentityProof",
    "InboundEvent",
    "Message",
    "MessageTemplate",
    "Notification",
    "NotificationAttempt",
    "OutboundNotification",
    "OutboxItem",
    "PresenceChange",
    "QualityAlert",
    "QualityState",
    "Queue",
    "Rating",
    "ReadMark",
    "ReportDaily",
    "ReportFact",
    "ReportHourly",
    "RetentionPolicy",
    "Segment",
    "Skill",
    "SlaClock",
    "SlaPolicy",
    "StandardViolation",
    "Subscription",
    "SuggestionEvent",
    "SuggestionStats",
    "Team",
    "TeamMember",
    "Timer",
    "Transition",
    "User",
    "UserSkill",
    "WebchatInvitationStat",
    "WebchatVisitor",
]

"""Import every model so the metadata (and Alembic) sees the whole schema."""

from kommutator.agents.models import Skill, Team, TeamMember, User, UserSkill
from kommutator.audit.models import AuditEntry
from kommutator.auth.models import ApiToken, AuthSession
from kommutator.channels.models import Channel, ChannelState
from kommutator.common.models import IdempotencyKey
from kommutator.contacts.models import Consent, Contact, Identity
from kommutator.conversations.models import Attachment, Conversation, ConversationLabel, Message, Transition
from kommutator.db import Base
from kommutator.ingest.models import InboundEvent
from kommutator.knowledge.models import Article
from kommutator.notifications.models import Notification
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
from kommutator.workers.models import OutboxItem, Timer

__all__ = [
    "ApiToken", "Article", "Attachment", "AuditEntry", "AuthSession", "Base", "Channel", "ChannelState",
    "Consent", "Contact",
    "Conversation", "ConversationLabel", "IdempotencyKey", "Identity", "InboundEvent", "Message", "Notification",
    "OutboxItem", "Queue", "Skill", "Team", "TeamMember", "Timer", "Transition", "User", "UserSkill",
]
# quality/ (kept apart so branches adding models merge without touching each other's lines)
__all__ += ["AlertDelivery", "AlertRule", "CommunicationStandard", "CsatSetting", "QualityAlert", "QualityState",
            "Rating", "SlaClock", "SlaPolicy", "StandardViolation"]

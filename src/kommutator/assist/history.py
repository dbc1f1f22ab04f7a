"""Past (customer text → agent reply) pairs from the message stream, and the placeholders put in and back.

``HistoryFeed`` takes messages in id order, one at a time, and gives a ``Pair`` for each agent reply that
answered customer text: the customer's last ``KEEP`` messages since the previous agent reply. The live index
and the replay command share it, so both learn from history the same way.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from kommutator.assist.index import Pair

KEEP = 3  # customer messages before a reply that make its "situation"
MAX_CHARS = 600
MAX_REPLY = 2000
# Those of canned responses, and the first word of a name for replies that greeted by first name.
PLACEHOLDERS = ("contact.name", "contact.first_name", "contact.email", "contact.phone", "agent.name",
                "agent.first_name")
PLACEHOLDER = re.compile(r"\{(" + "|".join(re.escape(p) for p in PLACEHOLDERS) + r")\}")
# A reply with someone's data in it is not a template for others: long numbers (orders, phones, cards),
# e-mail addresses, links with query strings.
_PRIVATE = re.compile(r"\d[\d\s-]{4,}\d|\d{5,}|[\w.+-]+@[\w-]+\.[\w.-]+|https?://\S*\?\S*")


@dataclass(slots=True)
class Row:
    """The columns of a message the feed needs."""

    id: int
    conversation_id: int
    team_id: int | None
    direction: str  # in, out
    sender_type: str  # contact, agent, bot, system
    text: str
    contact_name: str = ""
    agent_name: str = ""
    created_at: dt.datetime | None = None


def _swap_name(text: str, name: str, who: str) -> str:
    """Put {<who>.name} where the whole name stands as a word, {<who>.first_name} where its first word does."""
    name = " ".join(name.split())
    if len(name) < 2:
        return text
    text = re.sub(rf"(?<!\w){re.escape(name)}(?!\w)", "{" + who + ".name}", text)
    first = name.split()[0]
    if first != name and len(first) >= 2:
        text = re.sub(rf"(?<!\w){re.escape(first)}(?!\w)", "{" + who + ".first_name}", text)
    return text


def generalise(reply: str, *, contact_name: str, agent_name: str) -> str | None:
    """The reply as a template ({contact.name}, {agent.name} put back), or None when it holds private data."""
    reply = reply.strip()
    if not reply or len(reply) > MAX_REPLY or _PRIVATE.search(reply):
        return None
    reply = _swap_name(reply, contact_name, "contact")
    return _swap_name(reply, agent_name, "agent")


def personalise(template: str, values: dict[str, str]) -> str:
    """Fill the placeholders as the composer does for canned responses (missing values become empty); a first
    name is the first word of the name."""
    def value(m: re.Match[str]) -> str:
        key = m.group(1)
        if key.endswith(".first_name"):
            full = values.get(key.replace(".first_name", ".name"), "").split()
            return full[0] if full else ""
        return values.get(key, "")

    return PLACEHOLDER.sub(value, template)


class HistoryFeed:
    """Turn a stream of messages (in id order) into past reply pairs."""

    def __init__(self) -> None:
        self.pending: dict[int, list[str]] = {}

    def situation(self, conversation_id: int) -> str:
        """The customer text waiting for an answer in a conversation fed so far."""
        return "\n".join(self.pending.get(conversation_id, []))

    def feed(self, row: Row) -> Pair | None:
        if row.direction == "in":
            if row.text.strip():
                waiting = self.pending.setdefault(row.conversation_id, [])
                waiting.append(row.text.strip()[:MAX_CHARS])
                del waiting[:-KEEP]
            return None
        if row.direction != "out" or row.sender_type != "agent":
            return None
        waiting = self.pending.pop(row.conversation_id, [])
        if not waiting:
            return None
        template = generalise(row.text, contact_name=row.contact_name, agent_name=row.agent_name)
        if template is None:
            return None
        return Pair(message_id=row.id, conversation_id=row.conversation_id, team_id=row.team_id,
                    customer_text="\n".join(waiting), reply=template)

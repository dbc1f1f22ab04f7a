"""The KPI registry: every metric a report shows, with its name, unit, when it is counted and what it means.

One entry is one metric: its snake_case name (the API's ``metric=``), its unit, the fact columns holding
each conversation's value (wall-clock and business time), the moment it is counted at (``anchor``) and its
definition in Russian and English (shown as a tooltip in the screens and generated into docs/reports.md).
A new KPI is one more ``Metric`` in ``BUILTIN`` (and its column in ``reports/models.py`` and
``reports/facts.py``); nothing else switches on metric names. Definitions follow shared/guide/product.md.
"""

from __future__ import annotations

from dataclasses import dataclass

UNITS = ("seconds", "percent", "score", "count")


@dataclass(frozen=True)
class Metric:
    name: str
    unit: str  # seconds (a duration), percent (a share of 0/1 values), score (a mean rating), count
    anchor: str  # started, resolved or rated: the moment that puts a conversation's value in a period
    column: str | None  # the ReportFact column with each conversation's value; None: not a per-conversation KPI
    title: dict[str, str]
    definition: dict[str, str]
    business_column: str | None = None  # the value in business hours, where it differs
    scale: float = 1.0  # shown value = mean × scale (0/1 shares → percent)
    higher_is_better: bool = True

    def column_for(self, clock: str) -> str | None:
        return self.business_column if clock == "business" and self.business_column else self.column


_metrics: dict[str, Metric] = {}


def register(metric: Metric) -> None:
    assert metric.unit in UNITS, f"{metric.name}: unit must be one of {UNITS}"
    _metrics[metric.name] = metric


def metrics() -> dict[str, Metric]:
    return dict(_metrics)


def get(name: str) -> Metric | None:
    return _metrics.get(name)


def _m(name: str, unit: str, anchor: str, column: str | None, title_en: str, title_ru: str, en: str, ru: str,
       **kw: object) -> Metric:
    return Metric(name=name, unit=unit, anchor=anchor, column=column, title={"en": title_en, "ru": title_ru},
                  definition={"en": en, "ru": ru}, **kw)  # type: ignore[arg-type]


BUILTIN: tuple[Metric, ...] = (
    _m("conversations", "count", "started", "conversations", "Conversations", "Обращения",
       "Conversations started in the period.", "Обращения, начатые за период."),
    _m("messages_in", "count", "started", "messages_in", "Customer messages", "Сообщения клиентов",
       "Messages from customers in the conversations started in the period.",
       "Сообщения клиентов в обращениях, начатых за период."),
    _m("resolutions", "count", "resolved", "resolutions", "Resolved", "Решено",
       "Conversations resolved in the period (a reopened one counts when it is resolved again).",
       "Обращения, решённые за период (переоткрытое считается, когда решено снова)."),
    _m("wait_time", "seconds", "started", "wait_s", "Wait time", "Время ожидания",
       "Handoff to the queue → assignment to an agent.",
       "Передача в очередь → назначение оператору.", business_column="wait_bs", higher_is_better=False),
    _m("first_response_time", "seconds", "started", "first_response_s", "First response time",
       "Время первого ответа",
       "Handoff to humans (or conversation start if there is no bot step) → first agent reply visible to the "
       "customer. Bot messages and private notes are not responses.",
       "Передача людям (или начало обращения, если бота не было) → первый ответ оператора, видимый клиенту. "
       "Сообщения бота и внутренние заметки ответами не считаются.",
       business_column="first_response_bs", higher_is_better=False),
    _m("response_time", "seconds", "started", "response_s", "Response time", "Время ответа",
       "Each customer message (or the first of a burst) awaiting an agent → the next agent reply; a "
       "conversation's value is the mean of its replies after the first response.",
       "Каждое сообщение клиента (или первое из серии), ждущее оператора → следующий ответ оператора; "
       "значение обращения — среднее его ответов после первого.",
       business_column="response_bs", higher_is_better=False),
    _m("handle_time", "seconds", "resolved", "handle_s", "Handle time", "Время обработки",
       "Assignment → resolution.", "Назначение → решение.", business_column="handle_bs", higher_is_better=False),
    _m("resolution_time", "seconds", "resolved", "resolution_s", "Resolution time", "Время решения",
       "Conversation start → resolution.", "Начало обращения → решение.", business_column="resolution_bs",
       higher_is_better=False),
    _m("service_level", "percent", "started", "service_level", "Service level", "Уровень сервиса",
       "Share of conversations whose first response time is within the queue's target (e.g. 80% within 60 s).",
       "Доля обращений, время первого ответа которых уложилось в цель очереди (например, 80% за 60 с).",
       business_column="service_level_bs", scale=100.0),
    _m("sla_compliance", "percent", "resolved", "sla_compliance", "SLA compliance", "Соблюдение SLA",
       "Share of conversations that met every target of their SLA policy.",
       "Доля обращений, выполнивших все цели своей политики SLA.", scale=100.0),
    _m("abandonment", "percent", "resolved", "abandonment", "Abandonment", "Брошенные",
       "Conversations in which the customer left (no activity for the timeout) before an agent replied: handed "
       "to humans and resolved with no agent reply, as a share of those handed to humans.",
       "Обращения, в которых клиент ушёл (без активности до тайм-аута) до ответа оператора: переданы людям и "
       "решены без ответа оператора, как доля переданных людям.", scale=100.0, higher_is_better=False),
    _m("bot_containment", "percent", "resolved", "bot_containment", "Bot containment", "Решено ботом",
       "Share of conversations resolved by the bot with no human handoff (of those the bot took).",
       "Доля обращений, решённых ботом без передачи человеку (из тех, что принимал бот).", scale=100.0),
    _m("csat", "percent", "rated", "csat", "CSAT", "CSAT",
       "Share of ratings of 4–5 on a 1–5 scale.", "Доля оценок 4–5 по шкале 1–5.", scale=100.0),
    _m("csat_score", "score", "rated", "csat_score", "Mean rating", "Средняя оценка",
       "The mean rating on a 1–5 scale.", "Средняя оценка по шкале 1–5."),
    _m("nps", "score", "rated", "nps", "NPS", "NPS",
       "% promoters (9–10) minus % detractors (0–6) on a 0–10 scale.",
       "% сторонников (9–10) минус % критиков (0–6) по шкале 0–10."),
    _m("occupancy", "percent", "started", None, "Occupancy", "Загрузка",
       "Time agents spend with at least one active conversation ÷ time available (online).",
       "Время, когда у оператора есть хотя бы одно активное обращение ÷ время в сети.", scale=100.0),
)


def definitions_table() -> str:
    """The Markdown table of docs/reports.md, generated from the registry (a test keeps the page equal)."""
    lines = ["| Metric | Unit | Counted at | Definition | Определение | Fact columns (wall, business) |",
             "|---|---|---|---|---|---|"]
    for m in BUILTIN:
        cols = " ".join(f"`{c}`" for c in (m.column, m.business_column) if c) or "— (agents report)"
        lines.append(f"| `{m.name}` | {m.unit} | {m.anchor} | {m.definition['en']} | {m.definition['ru']} | {cols} |")
    return "\n".join(lines)


def register_all() -> None:
    for metric in BUILTIN:
        register(metric)

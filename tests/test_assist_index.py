"""The past-reply index against the definition it implements: whatever order and size pairs arrive in, each
pair's score equals ``similarity`` of the TF-IDF vectors computed from scratch with the current IDF."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kommutator.assist import index
from kommutator.assist.history import HistoryFeed, Row, generalise, personalise
from kommutator.assist.rank import Candidate, Usage, prior, rank

WORDS = ["вернуть", "товар", "заказ", "где", "мой", "оплата", "картой", "return", "item", "order", "where", "card",
         "pay", "доставка", "delivery", "возврат", "refund", "курьер", "when"]
texts = st.lists(st.sampled_from(WORDS), min_size=1, max_size=6).map(" ".join)


@settings(max_examples=60, deadline=None)
@given(docs=st.lists(texts, min_size=1, max_size=12), query=texts, merge=st.integers(1, 5))
def test_incremental_scores_equal_the_scores_computed_from_scratch(docs: list[str], query: str, merge: int) -> None:
    original = index.MERGE_ROWS
    index.MERGE_ROWS = merge  # exercise the main matrix, the tail and their merging
    try:
        ix = index.PairIndex()
        for n, d in enumerate(docs):
            ix.add(index.Pair(n, n, None, d, f"reply {n}"))
    finally:
        index.MERGE_ROWS = original
    got = ix.scores(query)
    q = ix.vocab.weigh(index.features(query))
    for n, d in enumerate(docs):
        want = index.similarity(q, ix.vocab.weigh(index.features(d)))
        assert got[n] == pytest.approx(want, abs=1e-9), (n, d)
        assert index.Doc(d).similarity(ix.vocab, q) == pytest.approx(want, abs=1e-9)


def test_identical_texts_score_one_and_unrelated_zero() -> None:
    ix = index.PairIndex()
    ix.add(index.Pair(1, 1, None, "Где мой заказ?", "В пути."))
    ix.add(index.Pair(2, 2, None, "Can I pay by card", "Yes."))
    scores = ix.scores("где мой ЗАКАЗ")
    assert scores[0] == pytest.approx(1.0) and scores[1] == 0.0


def test_team_filter_and_grouping_of_the_same_reply() -> None:
    ix = index.PairIndex()
    ix.add(index.Pair(1, 1, 10, "как вернуть товар", "Оформите возврат."))
    ix.add(index.Pair(2, 2, 10, "хочу вернуть товар", "оформите  возврат"))
    ix.add(index.Pair(3, 3, 20, "вернуть товар", "Team 20's reply."))
    hits = ix.search("вернуть товар", team_ids=frozenset({10}))
    assert [(h.pair.team_id, h.times_sent) for h in hits] == [(10, 2)]
    assert {h.pair.reply for h in ix.search("вернуть товар")} == {"Оформите возврат.", "Team 20's reply."}


def test_typos_and_word_forms_still_match_through_stems_and_character_grams() -> None:
    ix = index.PairIndex()
    ix.add(index.Pair(1, 1, None, "Как вернуть товар?", "A"))
    ix.add(index.Pair(2, 2, None, "How do I return an item?", "B"))
    assert ix.search("верните тавар")[0].pair.reply == "A"  # another form of the verb, a typo in the noun
    assert ix.search("returning items")[0].pair.reply == "B"


def test_the_feed_pairs_a_reply_with_the_customer_text_before_it_and_keeps_private_replies_out() -> None:
    feed = HistoryFeed()
    rows = [Row(1, 7, None, "in", "contact", "Здравствуйте"), Row(2, 7, None, "out", "bot", "Чем помочь?"),
            Row(3, 7, None, "in", "contact", "Где заказ?"),
            Row(4, 7, None, "out", "agent", "Мария, заказ в пути. Анна", contact_name="Мария Ли", agent_name="Анна"),
            Row(5, 7, None, "in", "contact", "А номер?"), Row(6, 7, None, "out", "agent", "Трек 1234567")]
    pairs = [p for r in rows if (p := feed.feed(r)) is not None]
    assert [(p.customer_text, p.reply) for p in pairs] == [
        ("Здравствуйте\nГде заказ?", "{contact.first_name}, заказ в пути. {agent.name}")]
    assert personalise(pairs[0].reply, {"contact.name": "Kate Smith", "agent.name": "Bob"}) == \
        "Kate, заказ в пути. Bob"
    assert generalise("Write to me at a@b.co", contact_name="", agent_name="") is None


def test_the_prior_moves_a_close_candidate_but_not_an_unrelated_one() -> None:
    assert prior(None) == pytest.approx(0.25)
    assert prior(Usage(shown=20)) < 0.05 < 0.25 < prior(Usage(shown=10, inserted=9))

    def cands() -> list[Candidate]:
        return [Candidate("canned:1", "canned", "A", "", 0.80), Candidate("canned:2", "canned", "B", "", 0.75),
                Candidate("canned:3", "canned", "C", "", 0.21)]
    assert [c.key for c in rank(cands(), {})] == ["canned:1", "canned:2", "canned:3"]
    liked = {"canned:2": Usage(shown=10, inserted=9), "canned:3": Usage(shown=50, inserted=50)}
    assert [c.key for c in rank(cands(), liked)][:2] == ["canned:2", "canned:1"]
    assert [c.key for c in rank(cands(), liked)][2] == "canned:3"  # a weak match stays last, however liked

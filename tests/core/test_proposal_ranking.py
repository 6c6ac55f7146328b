"""The Proofread ranking learned from decision records: it learns what separates accepted from rejected proposals,
falls back to the hand-made score with too few decisions, and a queue made after logged rejections of proposals
like one holds that one back."""

from __future__ import annotations

import json

import numpy as np
import pytest

from retina_desktop.core.vessels.proofread import ProofreadQueue
from retina_desktop.core.vessels.proposal_ranking import (
    FEATURES,
    MIN_DECISIONS,
    ProposalRanker,
    decision_record,
    decisions_of_log,
)


def _features(rng: np.random.Generator, prob_mean: float) -> dict[str, float]:
    """Random features, with ``probability mean`` set: the only one the decisions below depend on."""
    out = {name: float(rng.uniform(0, 1)) for name in FEATURES}
    out["probability mean"] = prob_mean
    return out


def _records(n: int, seed: int = 0) -> list[dict]:
    """Accepted where the probability along the piece is high; the hand score says nothing (it is random)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        prob = float(rng.uniform(0, 1))
        out.append(decision_record(_features(rng, prob), prob > 0.5))
    return out


def test_the_ranker_learns_the_feature_that_separates_the_decisions_and_orders_by_it():
    records = json.loads(json.dumps(_records(MIN_DECISIONS + 100)))  # as the review log keeps them
    ranker = ProposalRanker.fit(records)
    assert ranker.learned and ranker.decisions == MIN_DECISIONS + 100
    rng = np.random.default_rng(1)
    probs = np.linspace(0.05, 0.95, 10)
    base = _features(rng, 0.0)
    # The same but for the probability along them, and a hand score that orders them the other way.
    new = [dict(base, **{"probability mean": float(p), "score": float(1 - p)}) for p in probs[::-1]]
    chance = ranker.probability(new)
    assert list(np.argsort(-chance)) == list(range(10))  # the higher the probability along it, the surer
    assert chance[-1] < 0.2 < 0.8 < chance[0]


def test_too_few_decisions_or_one_kind_of_decision_ranks_by_the_hand_score():
    rng = np.random.default_rng(2)
    new = [_features(rng, p) for p in (0.9, 0.1, 0.5)]
    for records in (_records(MIN_DECISIONS - 1), [decision_record(_features(rng, 0.9), True)] * (MIN_DECISIONS + 50)):
        ranker = ProposalRanker.fit(records)
        assert not ranker.learned
        assert list(ranker.probability(new)) == [f["score"] for f in new]
    assert ProposalRanker.fit(_records(MIN_DECISIONS)).learned


def test_log_rows_without_features_are_not_decisions():
    rows = [
        {"action": "proposal rejected", "kind": "bridge"},  # logged before features were
        {"action": "proposal accepted", "features": {"score": 1.0}},
        {"action": "approve", "features": {"score": 1.0}},
    ]
    assert decisions_of_log(rows) == [{"features": {"score": 1.0}, "accepted": True}]
    assert not ProposalRanker.fit(decisions_of_log(rows) * 100).learned  # missing features: not usable


H, W = 60, 160


def _gap_image():
    """A vessel with a 5-px gap the model saw faintly: one bridge proposal."""
    mask = np.zeros((H, W), bool)
    mask[28:31, 10:150] = True
    mask[28:31, 78:83] = False
    prob = np.where(mask, 0.9, 0.02).astype(np.float32)
    prob[29, 78:83] = 0.3
    rgb = np.full((H, W, 3), (190, 90, 40), np.uint8)
    return mask, prob, rgb


def _logged_decisions(bridge_features: dict[str, float], bridges_accepted: bool) -> list[dict]:
    """Decisions logged on other images: bridges like this one (its features, jittered) all decided one way,
    the other way for bridges whose probability along the gap was high."""
    rng = np.random.default_rng(3)
    rows = []
    for i in range(MIN_DECISIONS // 2):
        like = {k: v * float(rng.uniform(0.95, 1.05)) for k, v in bridge_features.items()}
        unlike = dict(like, **{"probability mean": 0.8, "probability max": 0.9, "probability min": 0.7})
        rows.append({"action": "proposal accepted" if bridges_accepted else "proposal rejected", "image": f"o{i}",
                     "features": like})  # fmt: skip
        rows.append({"action": "proposal rejected" if bridges_accepted else "proposal accepted", "image": f"o{i}",
                     "features": unlike})  # fmt: skip
    return json.loads(json.dumps(rows))


@pytest.mark.parametrize("bridges_accepted", [False, True])
def test_a_queue_after_logged_rejections_of_proposals_like_one_holds_it_back(bridges_accepted):
    mask, prob, rgb = _gap_image()
    first = ProofreadQueue(prob, rgb, None, 0.5)
    found = first.compute(mask)
    assert [p.kind for p in found] == ["bridge"]
    record = first.record(found[0], False)
    assert json.loads(json.dumps(record)) == record and set(record["features"]) == set(FEATURES)
    feats = record["features"]  # read off the bridge: a break, along the model's faint 0.3 across the gap
    assert (
        feats["reason break"] == 1.0
        and feats["reason candidate"] == 0.0
        and feats["score"] == pytest.approx(record["score"], abs=1e-3)
    )
    assert feats["probability mean"] == pytest.approx(0.3, abs=0.01) and 4 <= np.expm1(feats["log length"]) <= 8
    queue = ProofreadQueue(prob, rgb, None, 0.5)
    queue.ranker = ProposalRanker.fit(decisions_of_log(_logged_decisions(record["features"], bridges_accepted)))
    queue.replace(queue.compute(mask))
    if bridges_accepted:  # the control: the same queue, decisions the other way, shows it
        assert [p.kind for p in queue.proposals] == ["bridge"] and queue.proposals[0].chance > 0.5
        assert queue.counter() == "0 of 1, 0 accepted"
    else:
        assert queue.proposals == [] and [p.kind for p in queue.held_back] == ["bridge"]
        assert queue.held_back[0].chance < 0.5 and queue.counter() == "0 of 0, 0 accepted, 1 held back"

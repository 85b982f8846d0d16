"""The search's arithmetic against hand-computed values: PUCT, the c schedule, priors, dedupe by
AST, branching factor, backup, the best-child rule, debate aggregation, reflection surprise."""

from __future__ import annotations

import math
import random

import pytest

from search.mcts import prompts as P
from search.mcts.expansion import branching_factor, children_of, dedupe, keep, priors, samples_for
from search.mcts.reflection import StepStats, estimated_success, most_surprising, surprises
from search.mcts.state_restore import action_key
from search.mcts.tree import Tree, backup, best_path, c_at, puct, select, select_child
from search.mcts.value import multi_debate_value, single_debate_value


def test_puct_uses_prior_alone_before_the_parent_is_visited_then_the_sqrt_rule() -> None:
    assert puct(0.0, 0.52, 0, 0, 1.0) == pytest.approx(0.52)
    assert puct(0.3, 0.5, 0, 7, 2.0) == pytest.approx(0.3 + 1.0)
    # Q + c*P*sqrt(N(s))/(1+N(s,a)) = -1 + 1*0.52*sqrt(1)/2
    assert puct(-1.0, 0.52, 1, 1, 1.0) == pytest.approx(-0.74)
    assert puct(0.0, 0.48, 1, 0, 1.0) == pytest.approx(0.48)
    assert puct(0.5, 0.25, 9, 2, 0.5) == pytest.approx(0.5 + 0.5 * 0.25 * 3 / 3)


def test_cosine_schedule_runs_from_one_to_c_end_and_constant_stays() -> None:
    assert c_at("cosine", 1.0, 0.1, 0, 60) == pytest.approx(1.0)
    assert c_at("cosine", 1.0, 0.1, 60, 60) == pytest.approx(0.1)
    assert c_at("cosine", 1.0, 0.1, 30, 60) == pytest.approx(math.cos(math.acos(0.1) / 2))  # ~0.7416
    assert c_at("cosine", 1.0, 0.1, 30, 60) == pytest.approx(0.74162, abs=1e-5)
    assert c_at("constant", 1.0, 0.1, 30, 60) == 1.0
    values = [c_at("cosine", 1.0, 0.1, i, 10) for i in range(11)]
    assert values == sorted(values, reverse=True)


def test_priors_are_softmax_of_log_count_over_temperature() -> None:
    # softmax(log(c)/5) = c^0.2 / sum: 12^0.2 = 1.64375, 8^0.2 = 1.51572
    p = priors([12, 8], 5.0)
    assert p[0] == pytest.approx(1.643752 / (1.643752 + 1.515717), abs=1e-6)
    assert p[0] == pytest.approx(0.52026, abs=1e-5) and sum(p) == pytest.approx(1.0)
    assert priors([3, 1], 1.0) == pytest.approx([0.75, 0.25])
    assert priors([6, 2, 2], 5.0, "proportional") == pytest.approx([0.6, 0.2, 0.2])
    assert priors([5, 5, 5], 5.0) == pytest.approx([1 / 3] * 3)


def test_dedupe_counts_code_that_differs_only_in_comments_and_formatting_as_one_action() -> None:
    a = "pyautogui.click(100, 200)"
    samples = [
        ([a], "r1"),
        (["# click the button\npyautogui.click( 100,200 )"], "r2"),
        (["pyautogui.click(100, 201)"], "r3"),
        (["pyautogui.click(100, 200)  # again"], "r4"),
        (["DONE"], "r5"),
        (["done"], "r6"),
    ]
    cands = dedupe(samples)
    assert [c.count for c in cands] == [3, 1, 2]
    assert cands[0].actions == [a] and cands[0].response == "r1"  # the first proposer represents it
    assert action_key("pyautogui.click(1,2)") == action_key("pyautogui.click(1, 2)  # c")
    assert action_key("pyautogui.click(1,2)") != action_key("pyautogui.click(2,1)")
    assert action_key({"action_type": "CLICK", "parameters": {"x": 1, "y": 2}}) == \
        action_key({"parameters": {"y": 2, "x": 1}, "action_type": "CLICK"})
    # a step of two actions is not the same step as its first action alone
    assert len(dedupe([([a, "DONE"], ""), ([a], "")])) == 2


def test_top_k_keeps_the_most_frequent_and_priors_cover_only_the_kept() -> None:
    steps = [(["pyautogui.press('a')"], "")] * 1 + [(["pyautogui.press('b')"], "")] * 4 + \
            [(["pyautogui.press('c')"], "")] * 2 + [(["pyautogui.press('d')"], "")] * 2
    kids = children_of(steps, 2, temperature=5.0)
    assert [c.count for c in kids] == [4, 2]
    assert kids[1].actions == ["pyautogui.press('c')"]  # tie with 'd': the first seen wins
    assert [c.prior for c in kids] == pytest.approx(priors([4, 2], 5.0))
    sampled = keep(dedupe(steps), 2, mode="sample", rng=random.Random(1))
    assert len(sampled) == 2 and len({c.key for c in sampled}) == 2


def test_branching_factor_decays_10_5_2_2_and_n_is_at_least_20() -> None:
    assert [branching_factor(10, d, 1.0) for d in range(4)] == [10, 5, 2, 2]
    assert [branching_factor(10, d, None) for d in range(3)] == [10, 10, 10]
    assert branching_factor(1, 3, 1.0) == 1
    assert samples_for(10, 20) == 20 and samples_for(15, 20) == 30 and samples_for(2, 20) == 20


def _tree_with_two_children() -> tuple[Tree, list]:
    tree = Tree()
    a = tree.add_child(tree.root, ["A"], "A", prior=0.52, count=12, response="")
    b = tree.add_child(tree.root, ["B"], "B", prior=0.48, count=8, response="")
    tree.root.expanded = True
    return tree, [a, b]


def test_backup_is_an_undiscounted_running_mean_on_every_edge_of_the_path() -> None:
    tree, (a, _) = _tree_with_two_children()
    a.executed = True
    a1 = tree.add_child(a, ["A1"], "A1", prior=1.0, count=1, response="")
    backup(a, -1.0)
    a1.executed = True
    backup(a1, 0.5)
    assert (a.visits, a.q) == (2, pytest.approx(-0.25))  # (-1 + 0.5) / 2
    assert (a1.visits, a1.q) == (1, pytest.approx(0.5))
    assert tree.root.visits == 2
    backup(a1, 1.0)
    assert a.q == pytest.approx((-1 + 0.5 + 1) / 3) and a1.q == pytest.approx(0.75)


def test_selection_takes_the_higher_prior_first_then_backtracks_after_a_bad_value() -> None:
    tree, (trap, good) = _tree_with_two_children()
    assert select(tree.root, 1.0) is trap  # N(s)=0: Q + c*P, 0.52 > 0.48
    trap.executed = True
    backup(trap, -1.0)
    # N(s)=1: trap -1 + 0.52*1/2 = -0.74; good 0 + 0.48*1/1 = 0.48
    assert select_child(tree.root, 1.0) is good
    good.executed, good.value = True, 0.7
    backup(good, 0.7)
    trap.value = -1.0
    assert [n.id for n in best_path(tree.root)] == [good.id]


def test_best_child_prefers_evaluated_then_visits_then_q() -> None:
    tree, (a, b) = _tree_with_two_children()
    c = tree.add_child(tree.root, ["C"], "C", prior=0.1, count=1, response="")
    a.value, a.visits, a.q = 0.2, 3, 0.2
    b.value, b.visits, b.q = 0.9, 3, 0.9
    c.visits, c.q = 10, 1.0  # never evaluated: not a candidate
    assert best_path(tree.root)[0] is b
    a.visits = 4
    assert best_path(tree.root)[0] is a


def test_single_debate_averages_parsable_letters_and_none_parsable_is_minus_one() -> None:
    assert single_debate_value(["A", "B", None, "E"]) == pytest.approx((1 + 0.5 - 1) / 3)
    assert single_debate_value(["C", "D"]) == pytest.approx((0.2 - 0.2) / 2)
    assert single_debate_value([None, None]) == -1.0
    assert single_debate_value(["A"] * 10) == 1.0


def test_multi_debate_averages_six_verdicts_with_unparsable_as_zero() -> None:
    assert multi_debate_value(["A", "B", "C", "D", "E", None]) == pytest.approx((1 + 0.7 + 0.5 - 0.2 - 1 + 0) / 6)
    assert multi_debate_value(["A"] * 6) == 1.0
    assert multi_debate_value([None] * 6) == 0.0


def test_verdict_parsing_takes_the_last_marked_letter() -> None:
    assert P.parse_evaluation("It could be A.\nEVALUATION: B") == "B"
    assert P.parse_evaluation("EVALUATION: **C**") == "C"
    assert P.parse_evaluation("evaluation: a") is None
    assert P.parse_evaluation("I think A") is None
    assert P.parse_status("STATUS CODE: D") == "D"
    assert P.parse_status("Status code A ... STATUS CODE: (E)") == "E"
    assert P.parse_status("STATUS: A") is None


def test_surprise_replaces_the_last_value_by_the_outcome_and_ranks_above_threshold() -> None:
    steps = [StepStats(q=0.5, visits=2, prior=0.5, v_next=0.4), StepStats(q=-0.2, visits=1, prior=0.3, v_next=0.7),
             StepStats(q=0.6, visits=1, prior=0.6, v_next=0.2)]
    # success: last V_next -> +1. |0.4-0.5| = 0.1, |0.7+0.2| = 0.9, |1-0.6| = 0.4
    assert surprises(steps, True, plus_abs_q=False) == pytest.approx([0.1, 0.9, 0.4])
    # OSWorld variant adds |Q|: 0.6, 1.1, 1.0
    assert surprises(steps, True, plus_abs_q=True) == pytest.approx([0.6, 1.1, 1.0])
    assert most_surprising([0.1, 0.9, 0.4], threshold=0.25, limit=3) == [1, 2]
    assert most_surprising([0.6, 1.1, 1.0], threshold=0.25, limit=2) == [1, 2]
    # failure: last V_next -> -1: |-1-0.6| = 1.6
    assert surprises(steps, False, plus_abs_q=False)[2] == pytest.approx(1.6)
    assert estimated_success(steps, 0.7) is False  # mean Q 0.3
    assert estimated_success([StepStats(0.8, 1, 1, 1), StepStats(0.9, 1, 1, 1)], 0.7) is True

"""The executors' action shares in summary.json depend on the results, not on the order they were
written in (calls that finish in another order, with the local backend's batched decoding or a
server, write result lines in another order)."""

from __future__ import annotations

from econash.summary import executor_actions


def rows(order: list[int]) -> list[dict]:
    actions = [["a", "x"], ["b", "x"], ["a", "y"], ["b", "y"]]
    return [{"details": {"actions": actions[i]}} for i in order]


def test_action_shares_and_their_order_do_not_depend_on_the_order_of_results():
    forward = executor_actions(rows([0, 1, 2, 3]))
    backward = executor_actions(rows([3, 2, 1, 0]))
    assert list(forward[0].items()) == list(backward[0].items()) == [("a", 0.5), ("b", 0.5)]
    assert list(forward[1].items()) == list(backward[1].items()) == [("x", 0.5), ("y", 0.5)]


def test_the_most_frequent_action_comes_first():
    shares = executor_actions([{"details": {"actions": [label]}} for label in ["b", "a", "a"]])
    assert list(shares[0].items()) == [("a", 0.6667), ("b", 0.3333)]

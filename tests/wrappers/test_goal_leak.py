from __future__ import annotations

import numpy as np
import pytest

from pixelrl.wrappers.goal_leak import find_goal_copy, goal_copy_message


def test_finds_every_goal_coordinate_in_order_of_the_goal():
    vector = np.array([0.3, 1.34, -0.2, 0.75, 0.53])
    assert find_goal_copy(vector, np.array([1.34, 0.75, 0.53])) == (1, 3, 4)
    assert find_goal_copy(vector, np.array([0.53, 1.34])) == (4, 1)


def test_a_missing_coordinate_or_a_near_copy_is_no_copy():
    vector = np.array([1.34, 0.75, 0.5])
    assert find_goal_copy(vector, np.array([1.34, 0.75, 0.53])) is None
    assert find_goal_copy(vector, np.array([1.34, 0.75 + 1e-12])) is None  # exact equality only
    assert find_goal_copy(np.array([1.0]), np.array([1.0, 1.0])) is None  # shorter than the goal


@pytest.mark.parametrize(
    ("vector", "expected"),
    [
        ([1.0, 0.8, 0.0, 0.1], None),  # an agent at the wall next to an object in the corner (1, 1)
        ([1.0, 0.8, 1.0, 0.1], (0, 2)),  # but two equal entries do hold both coordinates
    ],
)
def test_one_entry_holds_at_most_one_coordinate(vector, expected):
    assert find_goal_copy(np.array(vector), np.array([1.0, 1.0])) == expected


def test_message_names_the_key_both_index_spaces_the_reason_and_the_fix():
    message = goal_copy_message("proprioception", (2, 1), np.array([0.25, -0.5]), (0, 1))
    assert "'proprioception' carries the achieved goal" in message
    assert "entries [2, 1] (entries [0, 1] of the wrapped env's 'observation' vector" in message
    assert "equal achieved_goal [0.25, -0.5]" in message
    assert "must come from the image" in message
    assert "FETCH_REACH_STRICT_PROPRIO_INDICES" in message
    assert "goal_mode='both'" in message
    other = goal_copy_message("joint_angles", (0, 1), np.array([0.25, -0.5]))
    assert "Fix: leave those entries out of 'joint_angles'" in other
    assert "proprio_indices" not in other

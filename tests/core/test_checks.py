"""core.checks: which values each check accepts, and the message naming the argument otherwise."""
import re

import numpy as np
import pytest

from core import checks


@pytest.mark.parametrize("value, is_int, is_number, is_real", [
    (3, True, True, True), (np.int64(3), True, True, True), (np.uint8(0), True, True, True),
    (True, False, False, False), (np.bool_(True), False, False, False),
    (2.0, False, True, True), (np.float32(0.5), False, True, True),
    (float("inf"), False, True, False), (np.nan, False, True, False),
    ("3", False, False, False), (None, False, False, False), (1j, False, False, False),
])
def test_predicates(value, is_int, is_number, is_real):
    assert (checks.is_int(value), checks.is_number(value), checks.is_real(value)) == (is_int, is_number, is_real)


@pytest.mark.parametrize("check, args, message", [
    (checks.check_int, ("lag", 1, 2), "lag must be an integer >= 2, got 1"),
    (checks.check_int, ("seed", -1, 0), "seed must be an integer >= 0, got -1"),
    (checks.check_int, ("lag", True, 1), "lag must be an integer >= 1, got True"),
    (checks.check_int, ("lag", 3.0, 1), "lag must be an integer >= 1, got 3.0"),
    (checks.check_positive_int, ("hidden_size", 0), "hidden_size must be a positive integer, got 0"),
    (checks.check_positive_int, ("hidden_size", "8"), "hidden_size must be a positive integer, got '8'"),
    (checks.check_optional_positive_int, ("truncate", 0), "truncate must be None or a positive integer, got 0"),
    (checks.check_optional_positive_int, ("truncate", False),
     "truncate must be None or a positive integer, got False"),
    (checks.check_index, ("batch_index", 4, 4), "batch_index must be an integer in [0, 4), got 4"),
    (checks.check_index, ("batch_index", -1, 4), "batch_index must be an integer in [0, 4), got -1"),
    (checks.check_steps, ([2, 1], 5), "steps must be increasing integers in [0, 5), got [2, 1]"),
    (checks.check_steps, ([0, 5], 5, "outputs"), "outputs must be increasing integers in [0, 5), got [0, 5]"),
    (checks.check_steps, ([], 5), "steps must be increasing integers in [0, 5), got []"),
    (checks.check_steps, ([0.0, 1.0], 5), "steps must be increasing integers in [0, 5), got [0.0, 1.0]"),
    (checks.check_lags, (-1, 5), "lags must be None or an integer >= 0, got -1"),
    (checks.check_lags, (True, 5), "lags must be None or an integer >= 0, got True"),
    (checks.check_layers, ([2], 2), "layers must be None or layer indices in [0, 2), got [2]"),
    (checks.check_layers, ([], 2), "layers must be None or layer indices in [0, 2), got []"),
    (checks.check_sequence, (np.zeros((2, 3)), 4), "x must have shape (T, B, 4) with T, B > 0, got (2, 3)"),
    (checks.check_sequence, (np.zeros((0, 1, 4)), 4), "x must have shape (T, B, 4) with T, B > 0, got (0, 1, 4)"),
    (checks.check_sequence, (np.zeros((2, 1, 4), bool), 4), "x must hold real numbers, got dtype bool"),
    (checks.check_sequence, (np.full((2, 1, 4), np.inf), 4), "x contains NaN or inf"),
])
def test_checks_reject_with_a_message_naming_the_argument(check, args, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        check(*args)


def test_checks_accept_and_convert():
    checks.check_int("lag", np.int32(2), 2)
    checks.check_positive_int("hidden_size", np.int64(1))
    checks.check_optional_positive_int("truncate", None)
    assert checks.check_index("batch_index", np.int64(3), 4) == 3
    assert checks.check_steps(None, 3) == [0, 1, 2]
    assert checks.check_steps(np.array([0, 2]), 3) == [0, 2]
    assert checks.check_lags(None, 5) == 0 and checks.check_lags(2, 5) == 2 and checks.check_lags(np.int64(9), 5) == 0
    assert checks.check_layers(None, 3) == {0, 1, 2} and checks.check_layers((np.int64(1),), 3) == {1}
    x = checks.check_sequence([[[1, 2]]], 2)
    assert isinstance(x, np.ndarray) and x.shape == (1, 1, 2)

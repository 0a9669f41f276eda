"""The statistics in reports: Wilson intervals, McNemar's exact test, bootstrap intervals."""

from __future__ import annotations

import pytest

from econash.stats import bootstrap_mean_interval, mcnemar_exact, paired_comparison, wilson_interval


def test_wilson_interval_matches_the_closed_form_and_stays_in_range():
    low, high = wilson_interval(5, 10)
    assert low == pytest.approx(0.2366, abs=1e-4) and high == pytest.approx(0.7634, abs=1e-4)
    assert wilson_interval(0, 8)[0] == 0.0 and wilson_interval(8, 8)[1] == 1.0
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson_interval(11, 10)


def test_mcnemar_exact_is_the_two_sided_binomial_on_discordant_pairs():
    assert mcnemar_exact(0, 5) == pytest.approx(2 / 32)
    assert mcnemar_exact(3, 3) == 1.0 and mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(1, 9) == pytest.approx(2 * 11 / 1024)
    comparison = paired_comparison([True, True, False, True], [False, True, False, False])
    assert (comparison.only_a, comparison.only_b, comparison.difference) == (2, 0, 0.5)


def test_bootstrap_interval_covers_the_mean_and_narrows_with_more_values():
    few = [0.0, 1.0] * 5
    many = [0.0, 1.0] * 200
    low, high = bootstrap_mean_interval(few)
    assert low < 0.5 < high
    wide, narrow = high - low, bootstrap_mean_interval(many)[1] - bootstrap_mean_interval(many)[0]
    assert narrow < wide / 4
    assert bootstrap_mean_interval([0.7] * 6) == pytest.approx((0.7, 0.7))
    assert bootstrap_mean_interval(few, seed=3) == bootstrap_mean_interval(few, seed=3)
    with pytest.raises(ValueError):
        bootstrap_mean_interval([])


def test_paired_bootstrap_difference_keeps_questions_paired():
    from econash.stats import paired_bootstrap_difference

    a = [True] * 12 + [False] * 8
    b = [True] * 10 + [False] * 10  # A right on two more questions, never worse
    difference, low, high = paired_bootstrap_difference(a, b)
    assert difference == pytest.approx(0.1) and low <= difference <= high
    # A never does worse on a question, so no resample can give A a lower accuracy.
    assert low >= 0.0 and high <= 0.3
    # Identical verdicts differ by exactly 0 in every resample, however noisy each accuracy is.
    assert paired_bootstrap_difference(b, b) == (0.0, 0.0, 0.0)
    # Seeded and reproducible; the interval covers 0 when the methods disagree both ways equally.
    c = [True, False] * 10
    d = [False, True] * 10
    assert paired_bootstrap_difference(c, d, seed=4) == paired_bootstrap_difference(c, d, seed=4)
    _, low, high = paired_bootstrap_difference(c, d)
    assert low < 0 < high
    with pytest.raises(ValueError):
        paired_bootstrap_difference([True], [True, False])
    with pytest.raises(ValueError):
        paired_bootstrap_difference([], [])

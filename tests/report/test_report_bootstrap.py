"""Bootstrap intervals against cases whose answer is known in closed form."""

from __future__ import annotations

import math

import pytest

from mike_sdk.data.families import GROUPINGS, LANGUAGE_INFO, group_of
from mike_sdk.data.languages import LANGUAGES
from mike_sdk.report import bootstrap as bs

pytest.importorskip("numpy")


def test_bernoulli_interval_covers_the_mean_with_the_normal_width() -> None:
    sample = [1.0] * 120 + [0.0] * 280  # p = 0.3, n = 400
    est = bs.mean_ci(sample, resamples=4000, seed=1, key="bernoulli")
    assert est.mean == pytest.approx(30.0) and est.n == 400
    assert est.low < 30.0 < est.high
    expected = 2 * 1.96 * math.sqrt(0.3 * 0.7 / 400) * 100  # 8.98 points
    assert est.high - est.low == pytest.approx(expected, rel=0.12)
    # Same seed and key: the same numbers; another key: another draw.
    assert bs.mean_ci(sample, resamples=4000, seed=1, key="bernoulli") == est
    one, other = (bs.replicates(sample, 100, bs.rng_for(1, k)) for k in ("bernoulli", "other"))
    assert list(one) == list(bs.replicates(sample, 100, bs.rng_for(1, "bernoulli")))
    assert list(one) != list(other)


def test_continuous_scores_take_the_resampling_path_with_the_same_width() -> None:
    sample = [i / 399 for i in range(400)]  # 400 distinct values, mean 0.5, sd ~ 0.2894
    est = bs.mean_ci(sample, resamples=4000, seed=2, key="uniform")
    sd = math.sqrt(sum((x - 0.5) ** 2 for x in sample) / 400)
    assert est.mean == pytest.approx(50.0) and est.low < 50 < est.high
    assert est.high - est.low == pytest.approx(2 * 1.96 * sd / 20 * 100, rel=0.12)


def test_stratified_average_has_the_width_of_independent_strata() -> None:
    a, b = [1.0] * 80 + [0.0] * 120, [1.0] * 160 + [0.0] * 40  # 0.4 and 0.8, n = 200 each
    parts = [(sum(x) / len(x), bs.replicates(x, 4000, bs.rng_for(3, k)), len(x))
             for x, k in ((a, "a"), (b, "b"))]
    point, reps, n = bs.average(parts)
    est = bs.estimate(point, reps, n)
    assert est.mean == pytest.approx(60.0) and n == 400
    se = math.sqrt(0.4 * 0.6 / 200 + 0.8 * 0.2 / 200) / 2
    assert est.high - est.low == pytest.approx(2 * 1.96 * se * 100, rel=0.12)
    assert est.low < 60 < est.high


def test_identical_languages_average_to_one_language_width() -> None:
    """Two languages scoring every position alike add no information: resampling positions
    jointly keeps one language's width, where independent strata would shrink it by
    about 1/sqrt(2) (the undercoverage of paired samples)."""
    scores = {p: float(p % 5 < 2) for p in range(300)}  # 0.4, n = 300
    alone = bs.estimate(*bs.joint_average([scores], 4000, bs.rng_for(4, "one")))
    both = bs.estimate(*bs.joint_average([scores, dict(scores)], 4000, bs.rng_for(4, "two")))
    width = alone.high - alone.low
    assert width == pytest.approx(2 * 1.96 * math.sqrt(0.4 * 0.6 / 300) * 100, rel=0.12)
    assert both.mean == alone.mean == pytest.approx(40.0) and both.n == 600
    assert both.high - both.low == pytest.approx(width, rel=0.08)
    apart = bs.estimate(*bs.average([bs.joint_average([scores], 4000, bs.rng_for(4, k))
                                     for k in ("a", "b")]))
    assert apart.high - apart.low < 0.8 * width


def test_joint_average_of_languages_missing_positions() -> None:
    """Each language averages over the positions it has; the average is unweighted."""
    a = {p: 1.0 for p in range(100)}
    b = {p: float(p % 2) for p in range(50, 250)}  # 0.5 over 200 positions
    point, reps, n = bs.joint_average([a, b], 2000, bs.rng_for(5, "gaps"))
    assert point == pytest.approx(0.75) and n == 300
    assert 0.7 < float(reps.mean()) < 0.8


def test_paired_difference_of_identical_and_of_different_runs() -> None:
    items = {f"i{k}": float(k % 3 == 0) for k in range(300)}
    same = bs.paired_difference(items, dict(items), 1000, bs.rng_for(0, "same"))
    assert same is not None
    est = bs.estimate(*same)
    assert (est.mean, est.low, est.high) == (0.0, 0.0, 0.0) and not est.excludes_zero
    better = {k: 1.0 if v or int(k[1:]) % 2 else 0.0 for k, v in items.items()}
    diff = bs.paired_difference(better, items, 1000, bs.rng_for(0, "diff"))
    assert diff is not None
    est = bs.estimate(*diff)
    assert est.mean > 20 and est.low > 0 and est.excludes_zero
    assert bs.paired_difference(items, {"other": 1.0}, 1000, bs.rng_for(0, "x")) is None


def test_estimate_text_names_the_interval() -> None:
    est = bs.Estimate(mean=5.0, low=-1.25, high=10.0, n=3)
    assert est.text(signed=True) == "+5.0 [-1.2, +10.0]" and not est.excludes_zero


def test_every_language_has_a_script_and_family() -> None:
    assert set(LANGUAGE_INFO) == set(LANGUAGES)
    latin = {c for c in LANGUAGES if group_of(c, "script class") == "Latin"}
    assert {"de", "sr", "vi", "tr"} <= latin and not {"ru", "zh", "ja", "hi", "ar"} & latin
    assert all(group_of(c, g) for c in LANGUAGES for g in GROUPINGS)
    assert group_of("eu", "family") == "Basque" and group_of("de", "branch") == "Germanic"

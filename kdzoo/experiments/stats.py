"""Paired statistics of a comparison: per-seed gains, their mean, spread, 95 % interval, verdict.

For seeds ``i = 1..n`` with paired runs (same initial student, same batches) the gain is
``d_i = distilled_i - alone_i``. Reported: ``mean(d)``, the sample standard deviation ``s``
(``n - 1`` in the denominator) and the 95 % confidence interval of the mean,
``mean ± t(0.975, n - 1) · s / sqrt(n)`` (Student's t distribution). The verdict:

- **helped** when the whole interval is above 0,
- **hurt** when it is below 0,
- **no clear effect** when it contains 0,
- **one seed: cannot tell** for ``n = 1`` (no spread, no interval);
- **cannot tell: a gain is not a number** when some ``d_i`` is NaN or infinite (a run that
  gave no finite metric): no statistic is computed from it.

The t quantile is computed here (bisection on the t distribution's CDF through the regularised
incomplete beta function, continued fraction as in Numerical Recipes §6.4): no SciPy needed.
"""
import math
import statistics
from dataclasses import dataclass

RULE = ('Verdict rule: gain d = distilled - alone per seed (paired: same initial student, same '
        'batches); 95 % interval of the mean gain = mean ± t(0.975, n-1) · s / √n; "helped" if '
        'the interval is above 0, "hurt" if below, "no clear effect" if it contains 0, "one seed: '
        'cannot tell" for n = 1.')


def _beta_fraction(a, b, x, iterations=300, eps=1e-15):
    """The continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, iterations + 1):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            result *= d * c
        if abs(d * c - 1.0) < eps:
            break
    return result


def incomplete_beta(a, b, x):
    """The regularised incomplete beta function ``I_x(a, b)``."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                 + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_fraction(b, a, 1.0 - x) / b


def t_cdf(t, df):
    """``P(T <= t)`` for Student's t with ``df`` degrees of freedom."""
    tail = 0.5 * incomplete_beta(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_quantile(p, df):
    """The ``p`` quantile (``0.5 < p < 1``) of Student's t with ``df`` degrees of freedom."""
    if not 0.5 < p < 1.0 or df < 1:
        raise ValueError(f't_quantile: needs 0.5 < p < 1 and df >= 1, got p={p}, df={df}')
    low, high = 0.0, 1.0
    while t_cdf(high, df) < p:
        high *= 2.0
    for _ in range(200):
        mid = 0.5 * (low + high)
        low, high = (mid, high) if t_cdf(mid, df) < p else (low, mid)
    return 0.5 * (low + high)


@dataclass(frozen=True)
class PairedSummary:
    """Mean gain, sample std, 95 % interval (``None`` for one seed) and verdict of ``n`` gains."""
    n: int
    mean: float
    std: float
    low: float
    high: float
    verdict: str


def paired_summary(gains):
    """Summarise per-seed gains ``d_i`` (see the module docstring)."""
    gains = [float(g) for g in gains]
    if not gains:
        raise ValueError('paired_summary: no gains (no seed has both arms finished)')
    n = len(gains)
    if not all(math.isfinite(g) for g in gains):
        bad = sum(not math.isfinite(g) for g in gains)
        return PairedSummary(n, math.nan, math.nan, math.nan, math.nan,
                             f'cannot tell: {bad} of {n} gains not a number')
    mean = statistics.mean(gains)
    if n == 1:
        return PairedSummary(1, mean, math.nan, math.nan, math.nan, 'one seed: cannot tell')
    std = statistics.stdev(gains)
    half = t_quantile(0.975, n - 1) * std / math.sqrt(n)
    low, high = mean - half, mean + half
    verdict = 'helped' if low > 0 else 'hurt' if high < 0 else 'no clear effect'
    return PairedSummary(n, mean, std, low, high, verdict)

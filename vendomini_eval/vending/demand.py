"""Customer demand: random streams, the calendar, weather, and the expected sales of a product on a day.

Every draw of a day comes from a generator derived from (seed, stream, day), and a day draws the same numbers
for every product of the catalogue whatever the agent did. So weather, demand noise and the demand uniforms
are common to every policy run on one seed (common random numbers), and a loaded state draws what the original
would have. Sales are the Poisson quantile of the day's uniform: a lower expected demand never sells more.
"""

from __future__ import annotations

import datetime
import math
from dataclasses import dataclass

import numpy as np

from vendomini_eval.vending.state import Product

STREAMS = {"catalogue": 0, "weather": 1, "noise": 2, "demand": 3}

WEEKDAY_FACTOR = (0.95, 0.95, 1.0, 1.0, 1.1, 1.3, 1.2)
"""Monday .. Sunday: weekends sell more."""
MONTH_FACTOR = (0.85, 0.85, 0.95, 1.0, 1.05, 1.15, 1.2, 1.2, 1.05, 1.0, 0.9, 0.95)
"""January .. December: summer sells more."""
WEATHER = {"sunny": (0.35, 1.15), "cloudy": (0.30, 1.0), "rainy": (0.25, 0.8), "stormy": (0.10, 0.6)}
"""Weather: (probability, demand factor)."""
NOISE_SIGMA = 0.25
"""Log-normal day-to-day noise per product, with mean 1."""
VARIETY_IDEAL = 8
VARIETY_STEP = 0.06
"""Choice overload: each distinct product on sale beyond VARIETY_IDEAL lowers every product's demand by 6%."""
MAX_MEAN_UNITS = 100.0
"""Cap of a product's expected daily demand (a price near zero cannot draw unbounded crowds)."""


def stream(seed: int, name: str, *key: int) -> np.random.Generator:
    """The generator of one named stream (and, for the per-day streams, one day) of a seed."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(STREAMS[name], *key)))


@dataclass(frozen=True, slots=True)
class DayDraws:
    weather: str
    noise: tuple[float, ...]
    """Demand noise per catalogue product, in catalogue order."""
    uniforms: tuple[float, ...]
    """Demand uniform per catalogue product, in catalogue order."""


def day_draws(seed: int, day: int, n_products: int) -> DayDraws:
    names = list(WEATHER)
    probabilities = [p for p, _ in WEATHER.values()]
    weather = names[int(stream(seed, "weather", day).choice(len(names), p=probabilities))]
    noise = stream(seed, "noise", day).lognormal(-(NOISE_SIGMA**2) / 2, NOISE_SIGMA, n_products)
    uniforms = stream(seed, "demand", day).random(n_products)
    return DayDraws(weather, tuple(noise.tolist()), tuple(uniforms.tolist()))


def calendar_date(start: datetime.date, day: int) -> datetime.date:
    return start + datetime.timedelta(days=day)


def variety_factor(distinct_products: int) -> float:
    return max(0.0, 1.0 - VARIETY_STEP * max(0, distinct_products - VARIETY_IDEAL))


def expected_sales(
    product: Product,
    price_cents: int,
    date: datetime.date,
    weather: str,
    distinct_products: int,
    noise: float,
    demand_factor: float,
) -> float:
    """Mean units a product sells on a day: base sales x price response x weekday x month x weather x variety x
    noise x shock factor."""
    price_response = (price_cents / product.reference_price_cents) ** -product.elasticity
    mean = (
        product.base_sales
        * price_response
        * WEEKDAY_FACTOR[date.weekday()]
        * MONTH_FACTOR[date.month - 1]
        * WEATHER[weather][1]
        * variety_factor(distinct_products)
        * noise
        * demand_factor
    )
    return min(mean, MAX_MEAN_UNITS)


def poisson_quantile(uniform: float, mean: float) -> int:
    """The smallest k with P(Poisson(mean) <= k) >= uniform (inverse CDF: one uniform per draw, monotone in the
    mean)."""
    k, term = 0, math.exp(-mean)
    cumulative = term
    while cumulative < uniform and term > 0.0:
        k += 1
        term *= mean / k
        cumulative += term
    return k

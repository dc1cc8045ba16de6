"""A tool plugin: typed methods whose JSON schema comes from the type hints."""

import statistics

from plughost.sdk import Plugin

plugin = Plugin()


@plugin.method("add")
def add(a: float, b: float) -> float:
    """Add two numbers."""
    return a + b


@plugin.method("divide")
def divide(a: float, b: float) -> float:
    """Divide a by b (dividing by zero is an error the caller sees)."""
    if b == 0:
        raise ValueError("cannot divide by zero")
    return a / b


@plugin.method("stats")
async def stats(values: list[float]) -> dict[str, float]:
    """Mean, median and standard deviation of a list of numbers."""
    if not values:
        raise ValueError("values must not be empty")
    return {
        "mean": statistics.fmean(values),
        "median": statistics.median(values),
        "stdev": statistics.stdev(values) if len(values) > 1 else 0.0,
    }

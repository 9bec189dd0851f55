"""How a wait paces itself: bounds from the DAG arguments, checked when they are built."""

from __future__ import annotations

import json

import pytest

from airflow_provider_sgseg.exceptions import SendGridInputError
from airflow_provider_sgseg.rules.pacing import WaitBounds

BOUNDS = WaitBounds(floor=10, ceiling=300, interval=30, max_consecutive_failures=2)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"floor": 0}, "poll_floor"),
        ({"ceiling": 1, "floor": 2}, "poll_ceiling"),
        ({"max_consecutive_failures": -1}, "max_consecutive_failures"),
    ],
)
def test_bad_bounds_name_the_value(kwargs: dict[str, float], name: str) -> None:
    with pytest.raises(SendGridInputError, match=name):
        WaitBounds(**kwargs)


def test_bounds_round_trip_through_plain_json() -> None:
    assert WaitBounds.from_arguments(BOUNDS.to_arguments()) == BOUNDS
    assert json.loads(json.dumps(BOUNDS.to_arguments())) == BOUNDS.to_arguments()

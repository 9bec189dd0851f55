"""Emulator settings: identity, storage, clock, plan, SendGrid timings and quotas."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

DEMO_API_KEY = "SG.emulator-demo-key"

ClockMode = Literal["real", "manual"]
Plan = Literal["paid", "free"]
# Whether SendGrid deletes a segment that a scheduled Single Send targets is undocumented: "allow"
# deletes it (the send later goes out to nobody from it), "refuse" answers 400 naming the sends.
InUseDelete = Literal["allow", "refuse"]

# Fields that PATCH /__emulator__/config may change at runtime (identity and storage may not).
RUNTIME_FIELDS = frozenset(
    {
        "plan",
        "segment_delete_in_use",
        "contacts_populate_delay",
        "engagement_populate_delay",
        "membership_check_interval",
        "sample_interval",
        "sample_max_interval",
        "refresh_delay",
        "validation_delay",
        "refreshes_per_segment_per_day",
        "refresh_min_spacing",
        "refreshes_per_account_per_day",
        "rate_limit",
        "rate_limit_window",
        "upsert_delay",
        "import_delay",
        "export_delay",
        "export_expiry",
        "download_url_ttl",
        "stats_growth_period",
    }
)

# SendGrid's minutes and hours as seconds, for running whole DAGs against a real clock (the demo,
# `airflow dags test`): the waits stay real, but a refresh-then-wait pipeline takes seconds.
SHORT_TIMINGS: dict[str, float] = {
    "contacts_populate_delay": 3,
    "engagement_populate_delay": 6,
    "membership_check_interval": 3,
    "sample_interval": 5,
    "refresh_delay": 2,
    "upsert_delay": 1,
    "import_delay": 2,
    "export_delay": 2,
    "stats_growth_period": 20,
}

# For a demo on real Airflow: a refresh-then-wait pipeline that really waits, and runs again.
# As on SendGrid, a manual refresh is the quickest way to a sample: it lands 20 s after the POST,
# later than a sensor's first look (so a deferrable sensor defers), while a new segment's first
# own sample takes a minute and later ones come 60 s apart (120 s at most, where SendGrid backs
# off to a day), so a run whose refresh was skipped waits two minutes at most.
# The refresh quotas stay enforced but are loose enough for repeated runs: 10 s spacing, 100 per
# segment per day, 1,000 per account per day.
DEMO_SETTINGS: dict[str, float] = {
    "contacts_populate_delay": 60,
    "engagement_populate_delay": 120,
    "membership_check_interval": 60,
    "sample_interval": 60,
    "sample_max_interval": 120,
    "refresh_delay": 20,
    "refresh_min_spacing": 10,
    "refreshes_per_segment_per_day": 100,
    "refreshes_per_account_per_day": 1000,
    "stats_growth_period": 15,
}


@dataclass
class EmulatorConfig:
    """Everything that shapes one emulator instance. Timings are seconds; defaults are SendGrid's."""

    api_key: str = DEMO_API_KEY
    db_path: str | None = None
    clock: ClockMode = "real"
    start_time: str | None = None
    plan: Plan = "paid"
    segment_delete_in_use: InUseDelete = "allow"
    # SendGrid's timings and quotas below are the emulator's own copies (it is the oracle the
    # provider is tested against, so it never imports the provider's copies).
    contacts_populate_delay: float = 900
    engagement_populate_delay: float = 1800
    membership_check_interval: float = 3600
    sample_interval: float = 3600
    sample_max_interval: float = 86400
    refresh_delay: float = 60
    validation_delay: float = 0
    refreshes_per_segment_per_day: int = 2
    refresh_min_spacing: float = 3600
    refreshes_per_account_per_day: int = 10
    rate_limit: int | None = None
    rate_limit_window: float = 60
    # Contact jobs and exports. SendGrid documents no durations for these: INFERRED values.
    upsert_delay: float = 30
    import_delay: float = 60
    export_delay: float = 60
    export_expiry: float = 72 * 3600
    download_url_ttl: float = 3600
    # Single Send stats: opens and clicks keep growing this long after the send, then stop
    # (delivery counts settle within 1/48 of it). INFERRED: SendGrid documents no duration.
    stats_growth_period: float = 48 * 3600

    def __post_init__(self) -> None:
        check_values(dataclasses.asdict(self))

    @classmethod
    def short_timings(cls, **overrides: Any) -> EmulatorConfig:
        """A real-clock config with ``SHORT_TIMINGS``; ``overrides`` set any field, timings too."""
        return cls(**{"clock": "real", **SHORT_TIMINGS, **overrides})

    @classmethod
    def demo(cls, **overrides: Any) -> EmulatorConfig:
        """A real-clock config with ``DEMO_SETTINGS``; ``overrides`` set any field."""
        return cls(**{"clock": "real", **DEMO_SETTINGS, **overrides})

    def replace(self, **changes: Any) -> EmulatorConfig:
        return dataclasses.replace(self, **changes)

    def public_dict(self) -> dict[str, Any]:
        """The settings without the API key, for the admin API and logs."""
        values = dataclasses.asdict(self)
        del values["api_key"]
        return values


# Every runtime setting's range (seconds for timings). A value outside breaks the emulator, not
# just the scenario: an interval of 1e-300 s never advances a schedule, a negative rate limit
# refuses every request, a timing past a century overflows the clock.
MAX_SECONDS = 366 * 86400.0  # no SendGrid timing is longer than a year
MIN_INTERVAL = 1.0  # schedules step at least a second at a time
MAX_COUNT = 1_000_000
DELAYS = frozenset(
    {
        "contacts_populate_delay",
        "engagement_populate_delay",
        "refresh_delay",
        "validation_delay",
        "refresh_min_spacing",
        "upsert_delay",
        "import_delay",
        "export_delay",
    }
)
INTERVALS = frozenset(
    {
        "membership_check_interval",
        "sample_interval",
        "sample_max_interval",
        "rate_limit_window",
        "export_expiry",
        "download_url_ttl",
        "stats_growth_period",
    }
)
COUNTS = frozenset({"refreshes_per_segment_per_day", "refreshes_per_account_per_day"})
RANGES: dict[str, tuple[float, float]] = {
    **dict.fromkeys(DELAYS, (0.0, MAX_SECONDS)),
    **dict.fromkeys(INTERVALS, (MIN_INTERVAL, MAX_SECONDS)),
    **dict.fromkeys(COUNTS, (0, MAX_COUNT)),
    "rate_limit": (1, MAX_COUNT),
}


def check_values(values: dict[str, Any]) -> None:
    """Raise ValueError naming the first setting that is out of range (see ``RANGES``)."""
    if values.get("clock", "real") not in ("real", "manual"):
        raise ValueError(f"clock must be 'real' or 'manual', got {values['clock']!r}")
    if values.get("plan", "paid") not in ("paid", "free"):
        raise ValueError(f"plan must be 'paid' or 'free', got {values['plan']!r}")
    if values.get("segment_delete_in_use", "allow") not in ("allow", "refuse"):
        raise ValueError(
            f"segment_delete_in_use must be 'allow' or 'refuse', got {values['segment_delete_in_use']!r}"
        )
    for name, (low, high) in sorted(RANGES.items()):
        if name not in values or (name == "rate_limit" and values[name] is None):
            continue
        value = values[name]
        whole = name in COUNTS or name == "rate_limit"
        kind = int if whole else int | float
        if isinstance(value, bool) or not isinstance(value, kind) or not low <= value <= high:
            shape = "an integer" if whole else "a number of seconds"
            nullable = " or null" if name == "rate_limit" else ""
            raise ValueError(f"{name} must be {shape} from {low:g} to {high:g}{nullable}, got {value!r}")
    if not values.get("api_key", DEMO_API_KEY):
        raise ValueError("api_key must not be empty")
    start_time = values.get("start_time")
    if start_time is not None:
        try:
            datetime.fromisoformat(str(start_time).replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"start_time must be an ISO 8601 date-time, got {start_time!r}") from None


# Models read the settings through this, at use: ``POST /__emulator__/config`` replaces them.
ConfigSource = Callable[[], EmulatorConfig]

"""``sgseg-emulator`` / ``python -m sgseg_emulator``: serve the emulator."""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from .config import DEMO_API_KEY, DEMO_SETTINGS, SHORT_TIMINGS, EmulatorConfig

_TIMINGS = (
    ("contacts_populate_delay", "first sample of a contacts-only segment after create/update"),
    ("engagement_populate_delay", "first sample of an event_data (engagement) segment"),
    ("membership_check_interval", "how often membership is checked for changes"),
    ("sample_interval", "sample interval while membership changes (doubles when it does not)"),
    ("sample_max_interval", "longest sample interval"),
    ("refresh_delay", "delay between a manual refresh and its sample"),
    ("validation_delay", "how long status.query_validation stays PENDING"),
    ("refresh_min_spacing", "minimum time between two manual refreshes of a segment"),
    ("rate_limit_window", "window of --rate-limit"),
    ("upsert_delay", "from an accepted PUT /v3/marketing/contacts to its job applying"),
    ("import_delay", "from a CSV import's upload to its job applying"),
    ("export_delay", "from an accepted export to it being ready"),
    ("export_expiry", "how long a ready export's files stay downloadable"),
    ("download_url_ttl", "lifetime of each signed export / errors file URL"),
    ("stats_growth_period", "how long a sent Single Send's stats keep growing (then they settle)"),
)


def _listed(settings: dict[str, float]) -> str:
    return ", ".join(f"{name}={value:g}" for name, value in settings.items())


def build_parser() -> argparse.ArgumentParser:
    defaults = EmulatorConfig()
    parser = argparse.ArgumentParser(
        prog="sgseg-emulator",
        description="Offline emulator of the SendGrid Marketing Campaigns API (Segments V2, contacts, "
        "lists, Single Sends). Timings are seconds; defaults are SendGrid's documented values.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port; 0 picks a free one (default)")
    parser.add_argument(
        "--api-key", default=DEMO_API_KEY, help="bearer key clients must send (default: demo key)"
    )
    parser.add_argument(
        "--db", metavar="PATH", default=None, help="SQLite file to persist state (default: memory)"
    )
    parser.add_argument(
        "--clock", choices=("real", "manual"), default="real", help="real (default) or manual"
    )
    parser.add_argument("--start-time", default=None, help="manual clock start, ISO 8601 (default: now)")
    parser.add_argument("--plan", choices=("paid", "free"), default="paid", help="free: refresh answers 403")
    parser.add_argument(
        "--segment-delete-in-use",
        choices=("allow", "refuse"),
        default="allow",
        help="deleting a segment a scheduled Single Send targets: allow (default) or refuse with 400",
    )
    presets = parser.add_mutually_exclusive_group()
    presets.add_argument(
        "--short-timings",
        action="store_true",
        help="SendGrid's minutes as seconds (" + _listed(SHORT_TIMINGS) + "); flags given too win",
    )
    presets.add_argument(
        "--demo",
        action="store_true",
        help="for repeated demo runs: a refresh that a sensor really waits for, loose refresh quotas ("
        + _listed(DEMO_SETTINGS)
        + "); flags given too win",
    )
    for name, meaning in _TIMINGS:
        default = getattr(defaults, name)
        parser.add_argument(
            "--" + name.replace("_", "-"),
            type=float,
            default=None,  # None: the preset's or SendGrid's value (see config_from_args)
            help=f"{meaning} (default {default:g})",
        )
    parser.add_argument(
        "--refreshes-per-segment-per-day",
        type=int,
        default=None,
        help=f"per-segment refresh quota (default {defaults.refreshes_per_segment_per_day})",
    )
    parser.add_argument(
        "--refreshes-per-account-per-day",
        type=int,
        default=None,
        help=f"account-wide refresh quota (default {defaults.refreshes_per_account_per_day})",
    )
    parser.add_argument(
        "--rate-limit",
        type=int,
        default=None,
        help="requests allowed per --rate-limit-window (default: no limit)",
    )
    return parser


def config_from_args(args: argparse.Namespace) -> EmulatorConfig:
    fields = {field.name for field in dataclasses.fields(EmulatorConfig)}
    given = {name: value for name, value in vars(args).items() if name in fields and value is not None}
    preset = SHORT_TIMINGS if args.short_timings else DEMO_SETTINGS if args.demo else {}
    return EmulatorConfig(db_path=args.db, **{**preset, **given})


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = config_from_args(args)
    except ValueError as error:
        print(f"sgseg-emulator: {error}", file=sys.stderr)
        return 2
    from .server import EmulatorServer

    server = EmulatorServer(config, host=args.host, port=args.port)
    base_url = server.start()
    # Only the public demo key is printed: a real-looking key given on the command line must not
    # end up in terminal scrollback or CI logs.
    key = (
        f"api_key={config.api_key}"
        if config.api_key == DEMO_API_KEY
        else "(API key: as given with --api-key)"
    )
    print(f"sgseg-emulator listening on {base_url} {key}", flush=True)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The emulator refuses requests without the right key on every route and binds to loopback."""

from __future__ import annotations

import re
import socket
from typing import Any

import httpx
import pytest
from sgseg_emulator.__main__ import build_parser, config_from_args
from sgseg_emulator.app import create_app
from sgseg_emulator.config import EmulatorConfig
from sgseg_emulator.middleware import OPEN_ADMIN_PAGES
from sgseg_emulator.pytest_plugin import EmulatorHandle
from sgseg_emulator.server import EmulatorServer
from sgseg_emulator.state import Emulator

from .conftest import ALL_CONTACTS

SOME_ID = "3f1c2b4a-5d6e-4f70-8a9b-0c1d2e3f4a5b"
PLAUSIBLE_BODY = {
    "name": "sneaky",
    "query_dsl": ALL_CONTACTS,
    "user_time_zone": "UTC",
    "send_at": "now",
    "contacts": [{"email": "x@example.com"}],
    "kind": "drop",
    "seconds": 5,
    "plan": "free",
}


def _routes() -> list[tuple[str, str]]:
    """(method, path) of every route the emulator serves, path parameters filled in."""
    app = create_app(Emulator(EmulatorConfig(clock="manual"))).app
    found = set()
    for route in app.routes:
        methods = getattr(route, "methods", None) or set()
        path = getattr(route, "path", "")
        if not path.startswith(("/v3/", "/__emulator__")):
            continue  # FastAPI's own (docs are switched off)
        filled = re.sub(r"\{[^}]+\}", SOME_ID, path)
        found |= {(method, filled) for method in methods if method != "HEAD"}
    return sorted(found)


# Open without a key, on purpose: the read-only inspection page a person opens in a browser (no
# Authorization header there), linked from the tasks. It shows no key and no contact data
# (tests/emulator/test_inspect_page.py); every other route needs the key.
OPEN_ROUTES = set(OPEN_ADMIN_PAGES)
assert {("GET", "/__emulator__/inspect")} == OPEN_ROUTES, OPEN_ROUTES  # no page opens unnoticed
ROUTES = [route for route in _routes() if route not in OPEN_ROUTES]
BAD_AUTH: dict[str, dict[str, str]] = {
    "no-key": {},
    "wrong-key": {"Authorization": "Bearer SG.not-the-key"},
    "key-without-bearer": {},  # filled in per test: the right key, but not as a bearer token
    "other-scheme": {"Authorization": "Basic c2VuZGdyaWQ6a2V5"},
}


def test_the_route_table_covers_the_api_and_admin() -> None:
    assert set(_routes()) >= OPEN_ROUTES  # the exemption names a real route
    paths = {path for _, path in ROUTES}
    assert len(ROUTES) >= 20, ROUTES
    assert any(path.startswith("/v3/marketing/segments/2.0/refresh/") for path in paths)
    assert any(path.startswith("/v3/marketing/singlesends") for path in paths)
    assert any(path.startswith("/__emulator__/faults") for path in paths)


@pytest.mark.parametrize("auth", sorted(BAD_AUTH))
def test_every_route_answers_401_without_the_right_key(auth: str, sendgrid_emulator: EmulatorHandle) -> None:
    headers = dict(BAD_AUTH[auth])
    if auth == "key-without-bearer":
        headers = {"Authorization": sendgrid_emulator.api_key}
    clock_before = sendgrid_emulator.admin.now()
    answers: dict[tuple[str, str], int] = {}
    with httpx.Client(base_url=sendgrid_emulator.base_url, timeout=10) as client:
        for method, path in ROUTES:
            body: Any = PLAUSIBLE_BODY if method in ("POST", "PUT", "PATCH") else None
            answers[(method, path)] = client.request(method, path, json=body, headers=headers).status_code

    assert {route: code for route, code in answers.items() if code != 401} == {}
    # Nothing the refused requests asked for happened.
    admin = sendgrid_emulator.admin
    assert admin.config()["plan"] == "paid"
    assert admin.now() == clock_before
    assert admin._call("GET", "/faults")["faults"] == []
    assert admin.sends() == []
    assert [entry["status"] for entry in admin.requests()] == [401] * sum(
        1 for _, path in ROUTES if not path.startswith("/__emulator__")
    )
    with httpx.Client(
        base_url=sendgrid_emulator.base_url, headers={"Authorization": f"Bearer {sendgrid_emulator.api_key}"}
    ) as client:
        assert client.get("/v3/marketing/segments/2.0").json() == {"results": []}
        assert client.get("/v3/marketing/singlesends").json()["result"] == []


def test_server_binds_to_loopback_by_default() -> None:
    server = EmulatorServer(EmulatorConfig(clock="manual"))
    assert server.host == "127.0.0.1"
    with server:
        assert server.base_url.startswith("http://127.0.0.1:")
        # Reachable on loopback...
        with socket.create_connection(("127.0.0.1", server.port), timeout=5):
            pass
        # ...and not on another interface of this machine, when it has one.
        other = _non_loopback_address()
        if other is not None:
            with pytest.raises(OSError):
                socket.create_connection((other, server.port), timeout=2).close()


def test_cli_defaults_to_loopback_and_a_free_port() -> None:
    args = build_parser().parse_args([])
    assert args.host == "127.0.0.1"
    assert args.port == 0
    config = config_from_args(args)
    assert config.api_key  # never an open server: a key is always required
    assert EmulatorConfig().api_key


def test_empty_api_key_is_refused() -> None:
    with pytest.raises(ValueError, match="api_key"):
        EmulatorConfig(api_key="")


def _non_loopback_address() -> str | None:
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.1", 9))  # TEST-NET-1: no packet is sent for a UDP connect
        address: str = probe.getsockname()[0]
    except OSError:
        return None
    finally:
        probe.close()
    return None if address.startswith("127.") else address

"""The MockTransport fixtures of test_marketing_unit.py, shared with the other narrow hook tests."""

from tests.hooks.test_marketing_unit import (  # noqa: F401 (fixtures)
    _close_shared_async_clients,
    connection,
    make_hook,
    policy,
    sleeps,
)

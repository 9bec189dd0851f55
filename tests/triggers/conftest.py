"""Fixtures for the segment-populated sensor and trigger tests."""

from tests.sensors.emulated_time import emulated_time

__all__ = ["emulated_time"]

"""Offline SendGrid Marketing API emulator (FastAPI + SQLite), the ``sgseg-emulator`` distribution."""

__version__ = "0.3.0"

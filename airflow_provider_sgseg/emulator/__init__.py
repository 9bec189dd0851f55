"""Offline SendGrid Marketing API emulator (FastAPI + SQLite)."""

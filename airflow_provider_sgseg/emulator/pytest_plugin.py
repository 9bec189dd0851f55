"""pytest fixtures that start the emulator (filled in by the emulator work)."""

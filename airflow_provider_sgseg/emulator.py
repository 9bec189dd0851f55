"""The emulator moved to its own distribution; this name stays only to say where it went."""

raise ImportError(
    "airflow_provider_sgseg.emulator moved to the separate 'sgseg-emulator' distribution "
    "(since airflow-provider-sgseg 0.2.0): pip install sgseg-emulator, then import sgseg_emulator "
    "(command: sgseg-emulator; pytest fixtures load automatically)."
)

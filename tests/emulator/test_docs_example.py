"""The fixture example from docs/emulator.md, kept runnable."""

from __future__ import annotations

from sgseg_emulator.pytest_plugin import EmulatorHandle


def test_my_segment_populates(sendgrid_emulator: EmulatorHandle) -> None:
    from airflow_provider_sgseg.hooks.marketing import SendGridMarketingHook

    sendgrid_emulator.admin.seed_contacts([{"email": f"u{i}@example.com"} for i in range(10)])
    hook = SendGridMarketingHook()  # sendgrid_default now points at the emulator
    segment = hook.create_segment(
        "Example", "SELECT contact_id, updated_at FROM contact_data WHERE email LIKE '%@example.com'"
    )
    sendgrid_emulator.admin.advance_clock(15 * 60)  # SendGrid's first-sample delay
    assert hook.get_segment(segment["id"])["contacts_count"] == 10

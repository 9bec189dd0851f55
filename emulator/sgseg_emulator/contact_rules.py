"""What SendGrid accepts in a contact (pure rules, no I/O).

Two kinds of problems. *Structural* ones (no identifier, a value too long, an unknown custom field
id, a read-only field) make ``PUT /v3/marketing/contacts`` answer 400 for the whole request.
*Value* problems (an invalid email, a value that does not fit its custom field's type) are found
while the job runs: the row is counted in ``errored_count`` and listed in the errors file. In a
CSV import every problem is a row problem.
"""

from __future__ import annotations

import re
from typing import Any

from .contact_schema import IDENTIFIERS
from .field_definitions import RESERVED_BY_NAME, normalized_value

# Each limit here is the emulator's own copy of SendGrid's: the emulator is the oracle the
# provider is tested against, so it must not import the provider's copies.
# Own copy: "up to 30,000 contacts, or 6MB of data, whichever is lower".
MAX_CONTACTS_PER_UPSERT = 30_000
# Own copy of "6MB", read as 6,000,000 bytes of request body: the stricter reading (INFERRED).
MAX_UPSERT_BYTES = 6_000_000
# Own copies: a CSV import takes "up to one million contacts or 5GB of data".
MAX_IMPORT_CONTACTS = 1_000_000
MAX_IMPORT_BYTES = 5_000_000_000
MAX_ALTERNATE_EMAILS = 5  # own copy: ContactRequest.alternate_emails maxItems
# Own copy: ContactRequest maxLength per field (email, alternate emails and ids: 254).
MAX_LENGTHS = {
    "address_line_1": 100,
    "address_line_2": 100,
    "city": 60,
    "country": 50,
    "email": 254,
    "external_id": 254,
    "anonymous_id": 254,
    "first_name": 50,
    "last_name": 50,
    "state_province_region": 50,
}
# Fields the spec gives no maxLength (postal_code, phone_number...): the emulator's cap, INFERRED.
UNSPECIFIED_MAX_LENGTH = 1000
WRITABLE_FIELDS = frozenset(
    name for name, field in RESERVED_BY_NAME.items() if not field.read_only and name != "alternate_emails"
)

Problem = tuple[str, str]  # (field, message)
# "This must be a valid phone number" (spec): E.164, the emulator's reading (INFERRED).
_PHONE_NUMBER = re.compile(r"\+[1-9][0-9]{6,14}")


def is_email_address(text: str) -> bool:
    """SendGrid's exact rule is undocumented: text@text, no whitespace, at most 254 characters."""
    local, at, domain = text.rpartition("@")
    return bool(at and local and domain) and len(text) <= 254 and not any(char.isspace() for char in text)


def structure_problems(contact: Any, custom_types: dict[str, str]) -> list[Problem]:
    """Problems SendGrid refuses the whole upsert request for (fields relative to the contact)."""
    if not isinstance(contact, dict):
        return [("", "each contact must be an object")]
    problems: list[Problem] = []
    if not any(isinstance(contact.get(kind), str) and contact[kind].strip() for kind in IDENTIFIERS):
        problems.append(("", f"at least one identifier is required: {', '.join(IDENTIFIERS)}"))
    for name, value in contact.items():
        if name in ("custom_fields", "alternate_emails", "list_ids"):
            continue
        if name not in WRITABLE_FIELDS:
            reason = "read-only" if name in RESERVED_BY_NAME else "not a contact field"
            problems.append((name, f"{name!r} is {reason}"))
        elif not isinstance(value, str):
            problems.append((name, f"{name} must be a string"))
        elif len(value) > (limit := MAX_LENGTHS.get(name, UNSPECIFIED_MAX_LENGTH)):
            problems.append((name, f"{name} is longer than {limit} characters"))
    alternate = contact.get("alternate_emails")
    if alternate is not None and (
        not isinstance(alternate, list)
        or len(alternate) > MAX_ALTERNATE_EMAILS
        or not all(isinstance(item, str) and len(item) <= 254 for item in alternate)
    ):
        problems.append(
            ("alternate_emails", f"alternate_emails must be up to {MAX_ALTERNATE_EMAILS} addresses")
        )
    custom = contact.get("custom_fields")
    if custom is not None and not isinstance(custom, dict):
        problems.append(("custom_fields", "custom_fields must be an object keyed by custom field id"))
    elif custom:
        unknown = [field_id for field_id in custom if field_id not in custom_types]
        if unknown:  # SendGrid's words, also when names are given where ids belong
            problems.append(("custom_fields", f"invalid custom field ids supplied - {','.join(unknown)}"))
    return problems


def value_problem(contact: dict[str, Any], custom_types: dict[str, str]) -> str | None:
    """Why SendGrid's job would refuse this (structurally valid) row; normalizes custom values."""
    email = contact.get("email")
    if email is not None and not is_email_address(email.strip()):
        return f"invalid email {email!r}"
    phone = contact.get("phone_number_id")
    if phone is not None and not _PHONE_NUMBER.fullmatch(phone.strip()):
        return f"invalid phone_number_id {phone!r}: must be a phone number in E.164 form, e.g. +14155550100"
    for address in contact.get("alternate_emails") or ():
        if not is_email_address(address.strip()):
            return f"invalid alternate email {address!r}"
    custom = contact.get("custom_fields")
    if custom:
        for field_id, value in custom.items():
            if field_id not in custom_types:  # deleted since the request was accepted
                return f"invalid custom field ids supplied - {field_id}"
            stored, problem = normalized_value(custom_types[field_id], value)
            if problem is not None:
                return f"custom field {field_id} ({custom_types[field_id]}): {problem}"
            custom[field_id] = stored
    return None

"""Contact field definitions: SendGrid's reserved fields and the account's custom fields.

Pure rules (names, ids, value types) plus the definitions stored in the ``custom_fields`` table.
Contacts store custom values keyed by field **id** (``e1_T``), as SendGrid takes them on upsert;
answers that show a contact key them by field **name**, as SendGrid's contact reads do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from .store import Store

# Each limit here is the emulator's own copy of SendGrid's: the emulator is the oracle the
# provider is tested against, so it must not import the provider's copies.
MAX_CUSTOM_FIELDS = 500  # own copy: "You can have up to 500 custom fields."
MAX_FIELD_NAME_LENGTH = 100  # own copy: name minLength 1, maxLength 100
# Own cap for custom Text values: SendGrid documents no length (INFERRED).
MAX_CUSTOM_TEXT_LENGTH = 1000

FieldType = Literal["Text", "Number", "Date"]
_TYPE_SUFFIX = {"Text": "T", "Number": "N", "Date": "D"}
# "only alphanumeric characters (A-Z and 0-9) and underscores ... can only begin with letters
# A-Z or underscores" (spec, Create Custom Field Definition).
_NAME_RULE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class ReservedField:
    """A SendGrid reserved field: id (``_rf<n>_<type>``), name, type, and whether clients may write it."""

    id: str
    name: str
    field_type: str
    read_only: bool = False


def _reserved() -> tuple[ReservedField, ...]:
    # Ids and order as in the spec's Get All Field Definitions example (_rf0_T ... _rf23_T). The
    # example has no identifiers besides email; _rf24_T.._rf26_T for them are INFERRED.
    writable = (
        *("first_name", "last_name", "email", "alternate_emails", "address_line_1", "address_line_2"),
        *("city", "state_province_region", "postal_code", "country", "phone_number", "whatsapp"),
        *("line", "facebook", "unique_name"),
    )
    read_only = (
        ("email_domains", "Text"),
        ("last_clicked", "Date"),
        ("last_opened", "Date"),
        ("last_emailed", "Date"),
        ("singlesend_id", "Text"),
        ("automation_id", "Text"),
        ("created_at", "Date"),
        ("updated_at", "Date"),
        ("contact_id", "Text"),
    )
    fields = [ReservedField(f"_rf{index}_T", name, "Text") for index, name in enumerate(writable)]
    for name, field_type in read_only:
        fields.append(
            ReservedField(f"_rf{len(fields)}_{_TYPE_SUFFIX[field_type]}", name, field_type, read_only=True)
        )
    for name in ("phone_number_id", "external_id", "anonymous_id"):
        fields.append(ReservedField(f"_rf{len(fields)}_T", name, "Text"))
    return tuple(fields)


RESERVED_FIELDS = _reserved()
RESERVED_BY_NAME = {field.name: field for field in RESERVED_FIELDS}
_RESERVED_BY_ID = {field.id: field for field in RESERVED_FIELDS}
# Import field_mappings may name a reserved field with or without its type suffix ("_rf1").
_RESERVED_BY_ID.update({field.id.rsplit("_", 1)[0]: field for field in RESERVED_FIELDS})


def reserved_field(field_id: str) -> ReservedField | None:
    return _RESERVED_BY_ID.get(field_id)


def name_problem(name: Any, existing_names: list[str]) -> str | None:
    """Why ``name`` cannot be a new custom field's name (None: it can)."""
    if not isinstance(name, str) or not 1 <= len(name) <= MAX_FIELD_NAME_LENGTH:
        return f"name must be a string of 1 to {MAX_FIELD_NAME_LENGTH} characters"
    if not _NAME_RULE.fullmatch(name):
        return (
            f"name {name!r} may use only letters A-Z, digits 0-9 and underscores, "
            "and must begin with a letter or an underscore"
        )
    if name.lower() in RESERVED_BY_NAME:
        return f"name {name!r} is a reserved field name"
    if name.lower() in (other.lower() for other in existing_names):
        return f"a custom field named {name!r} already exists (names are unique ignoring case)"
    return None


def normalized_value(field_type: str, value: Any) -> tuple[Any, str | None]:
    """(value to store, None) or (None, why ``value`` does not fit a ``field_type`` field)."""
    if field_type == "Number":
        if isinstance(value, bool):
            return None, f"{value!r} is not a number"
        if isinstance(value, int | float):
            return value, None
        try:
            return float(value) if "." in str(value) or "e" in str(value).lower() else int(value), None
        except (TypeError, ValueError):
            return None, f"{value!r} is not a number"
    if field_type == "Date":
        moment = _parse_date(value)
        if moment is None:
            return None, f"{value!r} is not a date (YYYY-MM-DD, MM/DD/YYYY or ISO 8601 date-time)"
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ"), None
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        return None, f"{value!r} is not text"
    text = str(value)
    if len(text) > MAX_CUSTOM_TEXT_LENGTH:
        return None, f"text longer than {MAX_CUSTOM_TEXT_LENGTH} characters"
    return text, None


# Own copy of the Date forms taken (INFERRED; SendGrid's custom fields guide shows MM/DD/YYYY, its
# answers and exports give ISO 8601): YYYY-MM-DD, M/D/YYYY or MM/DD/YYYY, and an ISO 8601
# date-time (seconds and fraction optional; Z, an offset or none, read as UTC).
_DATE_FORMS = (
    re.compile(r"(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})"),
    re.compile(r"(?P<month>\d{1,2})/(?P<day>\d{1,2})/(?P<year>\d{4})"),
)
_DATETIME_FORM = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?([Zz]|[+-]\d{2}:?\d{2})?")


def _parse_date(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    text = value.strip()
    try:
        for form in _DATE_FORMS:
            if found := form.fullmatch(text):
                return datetime(
                    int(found["year"]), int(found["month"]), int(found["day"]), tzinfo=timezone.utc
                )
        if not _DATETIME_FORM.fullmatch(text):
            return None
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return moment.astimezone(timezone.utc)
    except (ValueError, OverflowError):  # OverflowError: no UTC moment in years 1-9999
        return None


def inferred_type(value: Any) -> str:
    """The type given to a custom field that admin seeding names before it exists."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "Text"
    return "Number"


@dataclass(frozen=True)
class CustomField:
    """An account's custom field: id (``e<n>_<type>``), name and type (Text, Number, Date)."""

    id: str
    name: str
    field_type: str


class FieldDefinitions:
    """The account's custom fields, stored in the ``custom_fields`` table."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def custom(self) -> list[CustomField]:
        """The custom fields, oldest first."""
        with self.store.lock:
            rows = self.store.conn.execute(
                "SELECT field_id, name, field_type FROM custom_fields ORDER BY seq"
            ).fetchall()
        return [CustomField(row["field_id"], row["name"], row["field_type"]) for row in rows]

    def by_id(self) -> dict[str, CustomField]:
        """The custom fields by id."""
        return {field.id: field for field in self.custom()}

    def names_by_id(self) -> dict[str, str]:
        """Custom field names by id (answers show values by name)."""
        return {field.id: field.name for field in self.custom()}

    def ids_by_name(self) -> dict[str, str]:
        """Custom field ids by name (query_dsl names fields; values are stored by id)."""
        return {field.name: field.id for field in self.custom()}

    def create(self, name: str, field_type: str) -> CustomField:
        """Store a new custom field; the caller has checked the name and the type."""
        with self.store.transaction() as conn:
            # Ids are never reused, not even after a delete: the counter lives in meta.
            last = conn.execute("SELECT value FROM meta WHERE key = 'custom_field_seq'").fetchone()
            seq = (int(last[0]) if last else 0) + 1
            conn.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('custom_field_seq', ?)", (str(seq),)
            )
            field = CustomField(f"e{seq}_{_TYPE_SUFFIX[field_type]}", name, field_type)
            conn.execute(
                "INSERT INTO custom_fields (field_id, name, field_type, seq) VALUES (?, ?, ?, ?)",
                (field.id, name, field_type, seq),
            )
        return field

    def rename(self, field: CustomField, name: str) -> CustomField:
        """Give ``field`` a new ``name`` (already checked) and return it renamed."""
        with self.store.lock:
            self.store.conn.execute("UPDATE custom_fields SET name = ? WHERE field_id = ?", (name, field.id))
        return CustomField(field.id, name, field.field_type)

    def delete(self, field: CustomField) -> None:
        """Remove the field and its value from every contact."""
        path = '$."' + field.id + '"'
        with self.store.transaction() as conn:
            conn.execute("DELETE FROM custom_fields WHERE field_id = ?", (field.id,))
            conn.execute(
                "UPDATE contacts SET custom_fields = json_remove(custom_fields, ?)"
                " WHERE json_type(custom_fields, ?) IS NOT NULL",
                (path, path),
            )

    def key_by_id(self, contacts: list[dict[str, Any]]) -> None:
        """Admin seeding: custom field keys that are ids stay; names (any case) become ids, the
        field being created (typed from the value) when missing."""
        known = {field.id for field in self.custom()}
        by_name = {field.name.lower(): field.id for field in self.custom()}
        for contact in contacts:
            custom = contact.get("custom_fields")
            if not custom:
                continue
            keyed: dict[str, Any] = {}
            for key, value in custom.items():
                if key not in known and key.lower() not in by_name:
                    field = self.create(key, inferred_type(value))
                    known.add(field.id)
                    by_name[key.lower()] = field.id
                keyed[key if key in known else by_name[key.lower()]] = value
            contact["custom_fields"] = keyed

"""Every limit in one place: SendGrid's (what it refuses or caps), and the provider's own bounds on
what it reads from outside. Constants only; the modules that apply them import them from here
(and keep them importable under their earlier homes).

Documented in docs/operators.md ("Bounds"), docs/hook.md and docs/reliability.md, which point here.
"""

from __future__ import annotations

# ---------------------------------------------------------------------------- SendGrid's limits

NAME_MAX_LENGTH = 100  # characters of a segment or Single Send name
SINGLE_SEND_MAX_SEGMENTS = 10  # segments one Single Send goes to
SINGLE_SEND_MAX_LISTS = 50  # lists one Single Send goes to
SINGLE_SEND_MAX_CATEGORIES = 10  # categories of one Single Send
LIST_FILTER_MAX_IDS = 50  # parent_list_ids of a segment list read

MAX_CONTACTS_PER_UPSERT = 30_000  # contacts in one PUT /v3/marketing/contacts
MAX_UPSERT_BYTES = 6_000_000  # encoded bytes of one PUT /v3/marketing/contacts
MAX_IMPORT_ROWS = 1_000_000  # per CSV import (SendGrid: 1,000,000 contacts or 5 GB)
MAX_IMPORT_BYTES = 5_000_000_000
MAX_ALTERNATE_EMAILS = 5  # alternate_emails of one contact

SINGLE_SENDS_PAGE_SIZE = 100  # the largest page_size of GET /v3/marketing/singlesends
LISTS_PAGE_SIZE = 1000  # the largest page_size of GET /v3/marketing/lists
STATS_PAGE_SIZE = 50  # the spec's page_size maximum on every stats endpoint
MAX_IDS_PER_LIST = 25  # singlesend_ids per GET /v3/marketing/stats/singlesends
MAX_IDS_PER_EXPORT = 50  # ids per GET /v3/marketing/stats/singlesends/export

# The longest wait a SendGrid answer can name that the provider believes (seconds), in the hook's
# retries and in a deferral alike: its quotas (the manual refresh's included) reset within 24
# hours. Longer values are capped, and logged.
MAX_SERVER_WAIT = 24 * 3600.0

# -------------------------------------------------------------- the provider's bounds on input

# One line of a source or export file, and one downloaded export file once decompressed (per MB
# of max_file_size, whose default is SendGrid's 5000: a CSV compresses about 5 to 10 times, so 8x
# leaves room); both configurable per task.
DEFAULT_MAX_LINE_BYTES = 8 * 1024 * 1024
DECOMPRESSED_BYTES_PER_FILE_MB = 8 * 1024 * 1024
DEFAULT_EXPORT_FILE_MB = 5000
# The stats CSV export's answer: a header and at most 50 lines of totals (a few hundred bytes
# each); anything much larger is not that CSV.
MAX_STATS_EXPORT_BYTES = 1024 * 1024
MAX_PAGES = 1000  # pages of one list read: a guard against a server that keeps handing out tokens

"""Compile SendGrid Segmentation V2 ``query_dsl`` into one SQLite SELECT over the emulator's tables.

The query is parsed with sqlglot (Snowflake dialect, which SendGrid's examples parse in), checked
against SendGrid's rules, and translated by walking the syntax tree. Only the constructs below are
translated; anything else is a :class:`QueryRuleError` naming the piece, so the emulator never
silently evaluates a query differently from how it reads.

The result selects exactly one column, ``contact_id``, without duplicates. Every literal of the
query is a bound parameter; the caller binds ``:now`` (the emulator clock as
``YYYY-MM-DDTHH:MM:SSZ``) for ``CURRENT_TIMESTAMP`` and friends.

Supported: ``SELECT contact_id, updated_at [, MAX(...) AS alias]``, ``FROM contact_data [AS c]``,
``[INNER] JOIN event_data [AS e] ON contact_id = contact_id`` (or ``USING (contact_id)``),
``WHERE`` with ``AND OR NOT = != <> < <= > >= [NOT] IN [NOT] LIKE ILIKE BETWEEN IS [NOT] NULL
+ - * / % ||``, ``contact_id [NOT] IN (SELECT contact_id FROM event_data ...)``, ``EXISTS``,
``GROUP BY contact_id[, updated_at] HAVING ...`` for last-event queries, ``array_contains``,
``ARRAY_SIZE``, ``LOWER``, ``UPPER``, ``CAST``/``::``/``TO_TIMESTAMP``, ``CURRENT_TIMESTAMP``,
``NOW()``, ``GETDATE()``, ``SYSDATE()``, ``CURRENT_DATE``, ``± INTERVAL '<n> <unit>'``,
``DATEADD``/``TIMESTAMPADD``, ``DATEDIFF`` (not in weeks). Not supported (rule error): other functions,
``ORDER BY``, ``LIMIT``, ``UNION``, ``WITH``, outer joins, window functions.

Mapping decisions:

* ``contact_data`` -> ``contacts``, ``event_data`` -> ``events``; names are case-insensitive.
* custom fields -> ``json_extract(custom_fields, '$."<name>"')``.
* ``array_contains(<array column>, value | [v1, v2])`` (SendGrid's order; Snowflake's order is
  accepted too) -> ``EXISTS`` over ``json_each``; "any of" for a list.
* timestamps are text in one fixed format, so timestamp literals are normalised at compile time
  and compared as text; ``± INTERVAL`` and ``DATEADD`` become ``strftime`` modifiers.
* an array column ``IS NULL`` when it is empty (the store keeps "no values" as ``[]``).
* comparisons follow SQLite: ``LIKE`` ignores ASCII case, ``%`` and ``/`` on integers are integer
  operations, text never equals a number except through a custom field (numeric affinity).
"""

from .compile import CompiledQuery, compile_query
from .rules import QueryRuleError, QuerySyntaxError

__all__ = ["CompiledQuery", "QueryRuleError", "QuerySyntaxError", "compile_query"]

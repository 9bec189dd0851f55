"""SendGrid's rules for ``query_dsl`` that do not depend on the translation (pure, no I/O).

Parsing into one SELECT, the clauses and GROUP BY lists allowed, the tables and columns a query
may name (``contact_data``, ``event_data``) and the kind of value each column holds, and the
wording of the errors: :class:`QuerySyntaxError` (not SQL: the API answers 400) and
:class:`QueryRuleError` (SQL that breaks a rule: the segment is saved as INVALID).
"""

from __future__ import annotations

import enum
import re

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from .. import contact_schema


class QuerySyntaxError(ValueError):
    """``query_dsl`` is not parseable SQL (the emulator answers 400)."""


class QueryRuleError(ValueError):
    """``query_dsl`` parses but breaks SendGrid's rules (the segment is saved as INVALID)."""


class Kind(enum.Enum):
    """The kind of value an expression holds, which decides how it may be compared."""

    VALUE = "value"
    TIMESTAMP = "timestamp"  # text in STORED_FORMAT, ordered like time
    ARRAY = "array"  # JSON array text, usable through array_contains / ARRAY_SIZE / IS NULL
    CUSTOM = "custom"  # custom field: its type (text, number, date) is only known per value
    VARIANT = "variant"  # event_data.DATA, usable through a path


CONTACT_DATA = "contact_data"
EVENT_DATA = "event_data"

# How query_dsl may use each kind of contact column (contact_schema declares the columns).
_KIND_OF = {
    "id": Kind.VALUE,
    "identifier": Kind.VALUE,
    "text": Kind.VALUE,
    "array": Kind.ARRAY,
    "timestamp": Kind.TIMESTAMP,
}
# contact_data columns from SendGrid's reference; the store uses the same names. Custom field
# values are reached by field name instead (see the compiler).
CONTACT_COLUMNS: dict[str, Kind] = {
    column.name: _KIND_OF[column.kind] for column in contact_schema.COLUMNS if column.kind in _KIND_OF
}
# event_data column -> (events column, kind). ``timestamp`` is accepted for event_timestamp.
EVENT_COLUMNS: dict[str, tuple[str, Kind]] = {
    "contact_id": ("contact_id", Kind.VALUE),
    "event_source": ("event_source", Kind.VALUE),
    "event_type": ("event_type", Kind.VALUE),
    "event_timestamp": ("event_timestamp", Kind.TIMESTAMP),
    "timestamp": ("event_timestamp", Kind.TIMESTAMP),
    "data": ("data", Kind.VARIANT),
}
SELECT_SHAPE = "SELECT contact_id, updated_at FROM contact_data [AS c] [JOIN event_data ...] [WHERE ...]"
_MAX_PIECE_CHARS = 120
# The emulator's own bound (SendGrid documents none): deeper queries are refused with a 400
# instead of exhausting Python's recursion while parsing, compiling or running them.
MAX_QUERY_DEPTH = 100
_TOO_DEEP = f"query_dsl nests too deeply: at most {MAX_QUERY_DEPTH} levels of expressions"


def piece(node: exp.Expr) -> str:
    """The offending part of the query as the user would write it, for error messages."""
    text = node.sql(dialect="snowflake")
    return text if len(text) <= _MAX_PIECE_CHARS else text[: _MAX_PIECE_CHARS - 3] + "..."


def parse_single_select(query_dsl: str) -> exp.Select:
    if not query_dsl.strip():
        raise QueryRuleError(f"query_dsl is empty: write a query such as {SELECT_SHAPE}")
    if _paren_depth(query_dsl) > MAX_QUERY_DEPTH:
        raise QueryRuleError(_TOO_DEEP)
    try:
        statements = [s for s in sqlglot.parse(query_dsl, read="snowflake") if s is not None]
    except RecursionError:
        raise QueryRuleError(_TOO_DEEP) from None
    except ParseError as error:
        raise QuerySyntaxError(_describe_parse_error(error)) from None
    except TokenError as error:
        raise QuerySyntaxError(f"query_dsl is not valid SQL: {_plain(str(error))}") from None
    if not statements:
        raise QueryRuleError(f"query_dsl holds no statement: write a query such as {SELECT_SHAPE}")
    if len(statements) > 1:
        raise QueryRuleError(
            f"query_dsl must be exactly one SELECT statement, found {len(statements)} separated by ';'"
        )
    statement = statements[0]
    if _tree_depth(statement) > MAX_QUERY_DEPTH:
        raise QueryRuleError(_TOO_DEEP)
    if isinstance(statement, exp.Select):
        return statement
    if isinstance(statement, (exp.Condition, exp.Alias)):
        raise QuerySyntaxError(
            f"query_dsl is not a SQL statement (expected SELECT): {query_dsl.strip()[:80]!r}"
        )
    keyword = query_dsl.split(maxsplit=1)[0].upper()
    if isinstance(statement, exp.Query):  # UNION, WITH ..., VALUES
        raise QueryRuleError(f"query_dsl must be a single plain SELECT, not {keyword}: {piece(statement)}")
    raise QueryRuleError(
        f"{keyword} is not allowed: query_dsl must be one SELECT and SendGrid segments support no data "
        f"modification; write {SELECT_SHAPE}"
    )


def _paren_depth(text: str) -> int:
    depth = deepest = 0
    for char in text:
        if char == "(":
            depth += 1
            deepest = max(deepest, depth)
        elif char == ")":
            depth -= 1
    return deepest


def _tree_depth(root: exp.Expr) -> int:
    """How deep the parsed tree nests (iteratively: the tree may be deeper than the stack)."""
    deepest, stack = 0, [(root, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > MAX_QUERY_DEPTH:
            break
        stack.extend((child, depth + 1) for child in node.iter_expressions())
    return deepest


def _plain(text: str) -> str:
    """Drop the terminal colour codes sqlglot puts around the highlighted token."""
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def _describe_parse_error(error: ParseError) -> str:
    if not error.errors:
        return f"query_dsl is not valid SQL: {_plain(str(error))}"
    first = error.errors[0]
    where = f" (line {first.get('line')}, column {first.get('col')})" if first.get("line") else ""
    return f"query_dsl is not valid SQL: {_plain(str(first.get('description')))}{where}"


def check_clauses(select: exp.Select, allowed: set[str]) -> None:
    always = {"expressions", "from", "from_", "joins", "where", "distinct"}
    for key, value in select.args.items():
        if key in always or key in allowed or value in (None, False, [], ""):
            continue
        listed = ", ".join(piece(v) for v in value) if isinstance(value, list) else _shown(value)
        raise QueryRuleError(f"unsupported clause in query_dsl: {listed or key.upper()}")
    distinct = select.args.get("distinct")
    if distinct is not None and distinct.args.get("on") is not None:
        raise QueryRuleError(f"unsupported clause in query_dsl: {piece(distinct)}")


def check_group(group: exp.Group) -> None:
    for key, value in group.args.items():
        if key != "expressions" and value not in (None, False, []):
            raise QueryRuleError(f"unsupported GROUP BY: {piece(group)}")
    for item in group.expressions:
        if not (is_column_named(item, "contact_id") or is_column_named(item, "updated_at")):
            raise QueryRuleError(f"GROUP BY may list only contact_id, updated_at, not {piece(item)}")


def _shown(value: object) -> str:
    return piece(value) if isinstance(value, exp.Expr) else ""


def is_column_named(node: exp.Expression, name: str) -> bool:
    return isinstance(node, exp.Column) and not isinstance(node.this, exp.Star) and node.name.lower() == name


def is_string(node: exp.Expression) -> bool:
    return isinstance(node, exp.Literal) and node.is_string


def json_path_key(key: str) -> str:
    """``$."key"``: quoted so any field name is read as one key."""
    if '"' in key:
        raise QueryRuleError(f"a JSON key cannot contain a double quote: {key!r}")
    return f'$."{key}"'


def unknown_column_message(node: exp.Column, table: str | None) -> str:
    where = {
        CONTACT_DATA: "contact_data has no such column and there is no custom field by that name",
        EVENT_DATA: f"event_data columns are {', '.join(sorted(EVENT_COLUMNS))}",
        None: "it is not a contact_data column, a custom field or an event_data column",
    }[table]
    hint = " (double quotes name a column: write text in single quotes)" if node.this.quoted else ""
    return f"unknown column {piece(node)}: {where}{hint}"

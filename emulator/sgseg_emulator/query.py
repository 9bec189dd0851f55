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

from __future__ import annotations

import enum
import re
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from sgseg_emulator.query_time import (
    STORED_FORMAT,
    canonical_unit,
    interval_modifiers,
    is_timestamp_text,
    negate_modifier,
    normalise_timestamp,
    unit_modifier,
)


class QuerySyntaxError(ValueError):
    """``query_dsl`` is not parseable SQL (the emulator answers 400)."""


class QueryRuleError(ValueError):
    """``query_dsl`` parses but breaks SendGrid's rules (the segment is saved as INVALID)."""


@dataclass(frozen=True)
class CompiledQuery:
    """A SQLite SELECT returning the distinct ``contact_id`` of every matching contact."""

    sql: str
    params: dict[str, object]
    uses_events: bool


class _Kind(enum.Enum):
    VALUE = "value"
    TIMESTAMP = "timestamp"  # text in STORED_FORMAT, ordered like time
    ARRAY = "array"  # JSON array text, usable through array_contains / ARRAY_SIZE / IS NULL
    CUSTOM = "custom"  # custom field: its type (text, number, date) is only known per value
    VARIANT = "variant"  # event_data.DATA, usable through a path


@dataclass(frozen=True)
class _Sql:
    text: str
    kind: _Kind = _Kind.VALUE


CONTACT_DATA = "contact_data"
EVENT_DATA = "event_data"
_STORE_TABLES = {CONTACT_DATA: "contacts", EVENT_DATA: "events"}

# contact_data columns from SendGrid's reference; the store uses the same names in lower case.
CONTACT_COLUMNS: dict[str, _Kind] = {
    "contact_id": _Kind.VALUE,
    "email": _Kind.VALUE,
    "phone_number_id": _Kind.VALUE,
    "external_id": _Kind.VALUE,
    "anonymous_id": _Kind.VALUE,
    "first_name": _Kind.VALUE,
    "last_name": _Kind.VALUE,
    "alternate_emails": _Kind.ARRAY,
    "address_line_1": _Kind.VALUE,
    "address_line_2": _Kind.VALUE,
    "city": _Kind.VALUE,
    "state_province_region": _Kind.VALUE,
    "postal_code": _Kind.VALUE,
    "country": _Kind.VALUE,
    "list_ids": _Kind.ARRAY,
    "created_at": _Kind.TIMESTAMP,
    "updated_at": _Kind.TIMESTAMP,
    "email_domains": _Kind.ARRAY,
    "phone_number": _Kind.VALUE,
    "whatsapp": _Kind.VALUE,
    "line": _Kind.VALUE,
    "facebook": _Kind.VALUE,
    "unique_name": _Kind.VALUE,
}

# event_data column -> (events column, kind). ``timestamp`` is accepted for event_timestamp.
EVENT_COLUMNS: dict[str, tuple[str, _Kind]] = {
    "contact_id": ("contact_id", _Kind.VALUE),
    "event_source": ("event_source", _Kind.VALUE),
    "event_type": ("event_type", _Kind.VALUE),
    "event_timestamp": ("event_timestamp", _Kind.TIMESTAMP),
    "timestamp": ("event_timestamp", _Kind.TIMESTAMP),
    "data": ("data", _Kind.VARIANT),
}

_NOW_FUNCTIONS = {"NOW", "GETDATE", "SYSDATE", "SYSTIMESTAMP", "LOCALTIMESTAMP"}
_COMPARISONS: dict[type[exp.Expression], str] = {
    exp.EQ: "=",
    exp.NEQ: "!=",
    exp.GT: ">",
    exp.GTE: ">=",
    exp.LT: "<",
    exp.LTE: "<=",
}
_ARITHMETIC: dict[type[exp.Expression], str] = {
    exp.Add: "+",
    exp.Sub: "-",
    exp.Mul: "*",
    exp.Div: "/",
    exp.Mod: "%",
}
# Snowflake reads `x NOT IN (SELECT ...)` as `x <> ALL (SELECT ...)`.
_SUBQUERY_MEMBERSHIP: dict[tuple[type[exp.Expression], type[exp.Expression]], str] = {
    (exp.NEQ, exp.All): "NOT IN",
    (exp.EQ, exp.Any): "IN",
}
# DATEDIFF units counted through epoch seconds: (truncation to the unit, seconds per unit).
_DIFF_SECONDS = {
    "second": ("%Y-%m-%d %H:%M:%S", 1),
    "minute": ("%Y-%m-%d %H:%M:00", 60),
    "hour": ("%Y-%m-%d %H:00:00", 3600),
    "day": ("%Y-%m-%d", 86400),
}
_SELECT_SHAPE = "SELECT contact_id, updated_at FROM contact_data [AS c] [JOIN event_data ...] [WHERE ...]"
_MAX_PIECE_CHARS = 120


def compile_query(query_dsl: str, custom_fields: Mapping[str, str] | Collection[str] = ()) -> CompiledQuery:
    """Check ``query_dsl`` against SendGrid's rules and translate it to SQLite.

    ``custom_fields`` maps the account's custom field names (matched case-insensitively) to the
    key of their values in ``contacts.custom_fields`` (the field id); a plain collection of names
    means the values are keyed by name.
    Raises :class:`QuerySyntaxError` or :class:`QueryRuleError`.
    """
    select = _parse_single_select(query_dsl)
    compiler = _Compiler(custom_fields)
    sql = compiler.main_select(select)
    return CompiledQuery(sql=sql, params=dict(compiler.params), uses_events=compiler.uses_events)


def _piece(node: exp.Expr) -> str:
    """The offending part of the query as the user would write it, for error messages."""
    text = node.sql(dialect="snowflake")
    return text if len(text) <= _MAX_PIECE_CHARS else text[: _MAX_PIECE_CHARS - 3] + "..."


def _parse_single_select(query_dsl: str) -> exp.Select:
    if not query_dsl.strip():
        raise QueryRuleError(f"query_dsl is empty: write a query such as {_SELECT_SHAPE}")
    try:
        statements = [s for s in sqlglot.parse(query_dsl, read="snowflake") if s is not None]
    except ParseError as error:
        raise QuerySyntaxError(_describe_parse_error(error)) from None
    except TokenError as error:
        raise QuerySyntaxError(f"query_dsl is not valid SQL: {_plain(str(error))}") from None
    if not statements:
        raise QueryRuleError(f"query_dsl holds no statement: write a query such as {_SELECT_SHAPE}")
    if len(statements) > 1:
        raise QueryRuleError(
            f"query_dsl must be exactly one SELECT statement, found {len(statements)} separated by ';'"
        )
    statement = statements[0]
    if isinstance(statement, exp.Select):
        return statement
    if isinstance(statement, (exp.Condition, exp.Alias)):
        raise QuerySyntaxError(
            f"query_dsl is not a SQL statement (expected SELECT): {query_dsl.strip()[:80]!r}"
        )
    keyword = query_dsl.split(maxsplit=1)[0].upper()
    if isinstance(statement, exp.Query):  # UNION, WITH ..., VALUES
        raise QueryRuleError(f"query_dsl must be a single plain SELECT, not {keyword}: {_piece(statement)}")
    raise QueryRuleError(
        f"{keyword} is not allowed: query_dsl must be one SELECT and SendGrid segments support no data "
        f"modification; write {_SELECT_SHAPE}"
    )


def _plain(text: str) -> str:
    """Drop the terminal colour codes sqlglot puts around the highlighted token."""
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def _describe_parse_error(error: ParseError) -> str:
    if not error.errors:
        return f"query_dsl is not valid SQL: {_plain(str(error))}"
    first = error.errors[0]
    where = f" (line {first.get('line')}, column {first.get('col')})" if first.get("line") else ""
    return f"query_dsl is not valid SQL: {_plain(str(first.get('description')))}{where}"


@dataclass(frozen=True)
class _Source:
    """One table reference of a SELECT: which table, its alias in the output SQL, its names."""

    table: str  # CONTACT_DATA or EVENT_DATA
    sql_alias: str
    name: str  # what the query calls it: its alias, or the table name when unaliased


@dataclass
class _Scope:
    sources: list[_Source]
    parent: _Scope | None = None

    def chain(self) -> Iterator[_Scope]:
        scope: _Scope | None = self
        while scope is not None:
            yield scope
            scope = scope.parent

    def find(self, name: str) -> _Source | None:
        for scope in self.chain():
            for source in scope.sources:
                if source.name == name:
                    return source
        return None


@dataclass
class _Compiler:
    custom_field_keys: Mapping[str, str] | Collection[str]
    params: dict[str, object] = field(default_factory=dict)
    uses_events: bool = False
    _custom_fields: dict[str, str] = field(default_factory=dict)
    _alias_count: int = 0
    # MAX(...) AS alias of the main select list, usable in HAVING.
    _max_aliases: dict[str, _Sql] = field(default_factory=dict)
    _in_having: bool = False

    def __post_init__(self) -> None:
        keys = self.custom_field_keys
        pairs = keys.items() if isinstance(keys, Mapping) else ((name, name) for name in keys)
        self._custom_fields = {name.lower(): key for name, key in pairs}

    # -- statements -------------------------------------------------------------------------

    def main_select(self, select: exp.Select) -> str:
        self._check_clauses(select, allowed={"group", "having"})
        from_source = self._from_source(select, allowed_tables=(CONTACT_DATA,))
        scope = _Scope([from_source])
        joins = self._joins(select, scope)
        self._main_select_list(select, scope)
        parts = [
            f"SELECT {'DISTINCT ' if joins else ''}{from_source.sql_alias}.contact_id",
            f"FROM {_STORE_TABLES[CONTACT_DATA]} AS {from_source.sql_alias}",
            *joins,
        ]
        parts += self._where(select, scope)
        group = select.args.get("group")
        having = select.args.get("having")
        if group is not None or having is not None:
            if group is not None:
                self._check_group(group)
            parts[0] = f"SELECT {from_source.sql_alias}.contact_id"
            parts.append(f"GROUP BY {from_source.sql_alias}.contact_id")
        if having is not None:
            self._in_having = True
            try:
                parts.append(f"HAVING {self._predicate(having.this, scope)}")
            finally:
                self._in_having = False
        return " ".join(parts)

    def _subquery(self, node: exp.Expression, parent: _Scope) -> str:
        """``(SELECT contact_id FROM event_data|contact_data ...)`` used by IN / EXISTS."""
        select = node.this if isinstance(node, exp.Subquery) else node
        if not isinstance(select, exp.Select):
            raise QueryRuleError(f"a subquery must be a single plain SELECT: {_piece(node)}")
        self._check_clauses(select, allowed=set())
        from_source = self._from_source(select, allowed_tables=(EVENT_DATA, CONTACT_DATA))
        scope = _Scope([from_source], parent)
        joins = self._joins(select, scope)
        items = select.expressions
        if len(items) != 1 or not _is_column_named(items[0], "contact_id"):
            listed = ", ".join(_piece(item) for item in items)
            raise QueryRuleError(f"a subquery must select only contact_id, not: {listed}")
        column = self._column(items[0], scope)
        parts = [
            f"SELECT {column.text}",
            f"FROM {_STORE_TABLES[from_source.table]} AS {from_source.sql_alias}",
            *joins,
            *self._where(select, scope),
        ]
        return " ".join(parts)

    def _check_clauses(self, select: exp.Select, allowed: set[str]) -> None:
        always = {"expressions", "from", "from_", "joins", "where", "distinct"}
        for key, value in select.args.items():
            if key in always or key in allowed or value in (None, False, [], ""):
                continue
            shown = ", ".join(_piece(v) for v in value) if isinstance(value, list) else _shown(value)
            raise QueryRuleError(f"unsupported clause in query_dsl: {shown or key.upper()}")
        distinct = select.args.get("distinct")
        if distinct is not None and distinct.args.get("on") is not None:
            raise QueryRuleError(f"unsupported clause in query_dsl: {_piece(distinct)}")

    def _from_source(self, select: exp.Select, allowed_tables: Sequence[str]) -> _Source:
        from_clause = select.args.get("from_") or select.args.get("from")
        if from_clause is None:
            raise QueryRuleError(f"query_dsl has no FROM: write {_SELECT_SHAPE}")
        return self._source(from_clause.this, allowed_tables, role="FROM")

    def _source(self, node: exp.Expression, allowed_tables: Sequence[str], role: str) -> _Source:
        if not isinstance(node, exp.Table) or not isinstance(node.this, exp.Identifier):
            raise QueryRuleError(f"{role} must name a table ({' or '.join(allowed_tables)}): {_piece(node)}")
        if node.args.get("db") or node.args.get("catalog"):
            raise QueryRuleError(f"{role} table must not be qualified: {_piece(node)}")
        table = node.name.lower()
        if table not in allowed_tables:
            raise QueryRuleError(
                f"unknown table {node.name!r} in {role}: it must be {' or '.join(allowed_tables)}"
            )
        if table == EVENT_DATA:
            self.uses_events = True
        sql_alias = f"t{self._alias_count}"
        self._alias_count += 1
        return _Source(table=table, sql_alias=sql_alias, name=(node.alias or node.name).lower())

    def _joins(self, select: exp.Select, scope: _Scope) -> list[str]:
        rendered: list[str] = []
        for join in select.args.get("joins") or []:
            kind = " ".join(part for part in (join.side, join.kind) if part).upper()
            if kind not in ("", "INNER") or join.args.get("method"):
                raise QueryRuleError(f"only JOIN / INNER JOIN is supported, not: {_piece(join)}")
            source = self._source(join.this, (EVENT_DATA,), role="JOIN")
            if any(existing.name == source.name for existing in scope.sources):
                raise QueryRuleError(f"table alias {source.name!r} is used twice: {_piece(join)}")
            partner = self._join_partner(join, scope, source)
            scope.sources.append(source)
            rendered.append(
                f"JOIN {_STORE_TABLES[source.table]} AS {source.sql_alias} "
                f"ON {source.sql_alias}.contact_id = {partner.sql_alias}.contact_id"
            )
        return rendered

    def _join_partner(self, join: exp.Join, scope: _Scope, joined: _Source) -> _Source:
        """The already-listed table the join links to; the condition must be on contact_id only."""
        rule = f"JOIN event_data must be ON contact_id = contact_id only, not: {_piece(join)}"
        using = join.args.get("using")
        on = join.args.get("on")
        while isinstance(on, exp.Paren):
            on = on.this
        if not using and on is None:
            raise QueryRuleError(
                f"{_piece(join.this)} must be joined with JOIN ... ON contact_id = contact_id"
            )
        if using:
            if [identifier.name.lower() for identifier in using] != ["contact_id"]:
                raise QueryRuleError(rule)
            return scope.sources[0]
        if isinstance(on, exp.Column) and _is_column_named(on, "contact_id"):
            sides: list[exp.Expression] = [on]
        elif isinstance(on, exp.EQ) and all(
            _is_column_named(side, "contact_id") for side in (on.this, on.expression)
        ):
            sides = [on.this, on.expression]
        else:
            raise QueryRuleError(rule)
        candidates = {source.name: source for source in [*scope.sources, joined]}
        named: list[_Source] = []
        for side in sides:
            qualifier = side.table.lower() if isinstance(side, exp.Column) else ""
            if not qualifier:
                continue
            if qualifier not in candidates:
                raise QueryRuleError(
                    f"unknown table or alias {qualifier!r} in JOIN condition: {_piece(join)}"
                )
            named.append(candidates[qualifier])
        others = [source for source in named if source is not joined]
        if len(sides) == 2 and len(named) == 2 and (joined not in named or len(others) != 1):
            raise QueryRuleError(rule)
        return others[0] if others else scope.sources[0]

    def _main_select_list(self, select: exp.Select, scope: _Scope) -> None:
        seen: list[str] = []
        for item in select.expressions:
            if isinstance(item, exp.Alias) and isinstance(item.this, exp.Max):
                self._max_aliases[item.alias.lower()] = self._aggregate(item.this, scope)
                continue
            if isinstance(item, exp.Max):
                raise QueryRuleError(
                    f"{_piece(item)} needs an alias, e.g. MAX(e.event_timestamp) AS last_event_at"
                )
            if isinstance(item, exp.Star) or (
                isinstance(item, exp.Column) and isinstance(item.this, exp.Star)
            ):
                raise QueryRuleError("SELECT * is not allowed: select exactly contact_id, updated_at")
            if isinstance(item, exp.Alias) and isinstance(item.this, exp.Column):
                raise QueryRuleError(
                    f"select contact_id and updated_at without an alias, not {_piece(item)} "
                    "(is a comma missing?)"
                )
            if not (_is_column_named(item, "contact_id") or _is_column_named(item, "updated_at")):
                raise QueryRuleError(
                    f"{_piece(item)} cannot be selected: only contact_id, updated_at "
                    "(and MAX(...) AS alias for last-event queries) are allowed"
                )
            assert isinstance(item, exp.Column)
            self._column(item, scope)
            if item.name.lower() in seen:
                raise QueryRuleError(f"{item.name.lower()} is selected twice")
            seen.append(item.name.lower())
        missing = [name for name in ("contact_id", "updated_at") if name not in seen]
        if missing:
            raise QueryRuleError(
                f"the select list must include contact_id and updated_at; missing: {', '.join(missing)}"
            )

    def _check_group(self, group: exp.Group) -> None:
        for key, value in group.args.items():
            if key != "expressions" and value not in (None, False, []):
                raise QueryRuleError(f"unsupported GROUP BY: {_piece(group)}")
        for item in group.expressions:
            if not (_is_column_named(item, "contact_id") or _is_column_named(item, "updated_at")):
                raise QueryRuleError(f"GROUP BY may list only contact_id, updated_at, not {_piece(item)}")

    def _where(self, select: exp.Select, scope: _Scope) -> list[str]:
        where = select.args.get("where")
        return [] if where is None else [f"WHERE {self._predicate(where.this, scope)}"]

    # -- expressions ------------------------------------------------------------------------

    def bind(self, value: object) -> str:
        name = f"p{len(self.params)}"
        self.params[name] = value
        return f":{name}"

    def _predicate(self, node: exp.Expression, scope: _Scope) -> str:
        return self._scalar(node, scope).text

    def _scalar(self, node: exp.Expression, scope: _Scope) -> _Sql:
        """Translate ``node`` where a single value is expected (arrays are not values)."""
        result = self._expr(node, scope)
        if result.kind is _Kind.ARRAY:
            raise QueryRuleError(
                f"{_piece(node)} is an array: use array_contains({_piece(node)}, 'value') or ARRAY_SIZE"
            )
        return result

    def _expr(self, node: exp.Expression, scope: _Scope) -> _Sql:
        if isinstance(node, exp.Paren):
            inner = self._expr(node.this, scope)
            return _Sql(f"({inner.text})", inner.kind)
        if isinstance(node, (exp.And, exp.Or)):
            operator = "AND" if isinstance(node, exp.And) else "OR"
            left, right = self._predicate(node.this, scope), self._predicate(node.expression, scope)
            return _Sql(f"({left} {operator} {right})")
        if isinstance(node, exp.Not):
            return _Sql(f"(NOT {self._predicate(node.this, scope)})")
        if type(node) in _COMPARISONS:
            return self._comparison(node, scope)
        if isinstance(node, exp.Is):
            return self._is(node, scope)
        if isinstance(node, (exp.Like, exp.ILike, exp.Escape)):
            return self._like(node, scope)
        if isinstance(node, exp.In):
            return self._in(node, scope)
        if isinstance(node, exp.Between):
            value, low, high = self._operands([node.this, node.args["low"], node.args["high"]], scope)
            return _Sql(f"({value.text} BETWEEN {low.text} AND {high.text})")
        if isinstance(node, exp.Exists):
            return _Sql(f"EXISTS ({self._subquery(node.this, scope)})")
        if isinstance(node, exp.ArrayContains):
            return self._array_contains(node, scope)
        if isinstance(node, exp.ArraySize):
            array = self._expr(node.this, scope)
            if array.kind is not _Kind.ARRAY:
                raise QueryRuleError(f"ARRAY_SIZE needs an array column: {_piece(node)}")
            return _Sql(f"json_array_length({array.text})")
        if isinstance(node, (exp.Lower, exp.Upper)):
            function = "lower" if isinstance(node, exp.Lower) else "upper"
            return _Sql(f"{function}({self._scalar(node.this, scope).text})")
        if type(node) in _ARITHMETIC:
            return self._arithmetic(node, scope)
        if isinstance(node, exp.Neg):
            return _Sql(f"(-{self._number_operand(node.this, scope).text})")
        if isinstance(node, exp.DPipe):
            head, tail = self._scalar(node.this, scope), self._scalar(node.expression, scope)
            return _Sql(f"({head.text} || {tail.text})")
        if isinstance(node, exp.Column):
            return self._column(node, scope)
        if isinstance(node, (exp.JSONExtract, exp.Bracket)):
            return self._variant_path(node, scope)
        if isinstance(node, exp.Literal):
            return _Sql(self.bind(_literal_value(node)))
        if isinstance(node, exp.Boolean):
            return _Sql("1" if node.this else "0")
        if isinstance(node, exp.Null):
            return _Sql("NULL")
        if isinstance(node, exp.CurrentTimestamp) or (
            isinstance(node, exp.Anonymous) and node.name.upper() in _NOW_FUNCTIONS and not node.expressions
        ):
            return _Sql(":now", _Kind.TIMESTAMP)
        if isinstance(node, exp.CurrentDate):
            return _Sql("strftime('%Y-%m-%dT00:00:00Z', :now)", _Kind.TIMESTAMP)
        if isinstance(node, (exp.DateAdd, exp.TimestampAdd, exp.DateSub, exp.TimestampSub)):
            return self._date_add(node, scope)
        if isinstance(node, exp.DateDiff):
            return self._date_diff(node, scope)
        if isinstance(node, exp.Cast):
            return self._cast(node, scope)
        if isinstance(node, exp.Max):
            if not self._in_having:
                raise QueryRuleError(f"{_piece(node)} is allowed only in the select list and HAVING")
            return self._aggregate(node, scope)
        if isinstance(node, exp.Interval):
            raise QueryRuleError(f"{_piece(node)} can only be added to or subtracted from a timestamp")
        if isinstance(node, exp.Func):
            raise QueryRuleError(f"unsupported function in query_dsl: {_piece(node)}")
        raise QueryRuleError(f"unsupported expression in query_dsl: {_piece(node)}")

    def _column(self, node: exp.Column, scope: _Scope) -> _Sql:
        if isinstance(node.this, exp.Star):
            raise QueryRuleError(f"{_piece(node)} is not allowed here")
        if node.args.get("db") or node.args.get("catalog"):
            raise QueryRuleError(f"column {_piece(node)} has too many qualifiers: use alias.column")
        name = node.name.lower()
        qualifier = node.table.lower()
        if qualifier:
            source = scope.find(qualifier)
            if source is None:
                raise QueryRuleError(f"unknown table or alias {node.table!r} in {_piece(node)}")
            resolved = self._source_column(source, name)
            if resolved is None:
                raise QueryRuleError(_unknown_column_message(node, source.table))
            return resolved
        if self._in_having and name in self._max_aliases:
            return self._max_aliases[name]
        for level in scope.chain():
            for source in level.sources:
                resolved = self._source_column(source, name)
                if resolved is not None:
                    return resolved
        raise QueryRuleError(_unknown_column_message(node, None))

    def _source_column(self, source: _Source, name: str) -> _Sql | None:
        if source.table == EVENT_DATA:
            if name not in EVENT_COLUMNS:
                return None
            column, kind = EVENT_COLUMNS[name]
            return _Sql(f"{source.sql_alias}.{column}", kind)
        if name in CONTACT_COLUMNS:
            return _Sql(f"{source.sql_alias}.{name}", CONTACT_COLUMNS[name])
        if name in self._custom_fields:
            path = self.bind(_json_path_key(self._custom_fields[name]))
            return _Sql(f"json_extract({source.sql_alias}.custom_fields, {path})", _Kind.CUSTOM)
        return None

    def _variant_path(self, node: exp.Expression, scope: _Scope) -> _Sql:
        """``e.DATA:payload.unique_args.id`` or ``e.DATA['key'][0]`` -> ``json_extract(data, path)``."""
        base, path = self._variant_base_and_path(node, scope)
        return _Sql(f"json_extract({base}, {self.bind(path)})")

    def _variant_base_and_path(self, node: exp.Expression, scope: _Scope) -> tuple[str, str]:
        if isinstance(node, exp.Column):
            column = self._column(node, scope)
            if column.kind is not _Kind.VARIANT:
                raise QueryRuleError(
                    f"paths (':' or '[...]') apply only to event_data DATA, not {_piece(node)}"
                )
            return column.text, "$"
        base, path = self._variant_base_and_path(node.this, scope)
        if isinstance(node, exp.JSONExtract):
            json_path = node.expression
            if not isinstance(json_path, exp.JSONPath):
                raise QueryRuleError(f"unsupported DATA path: {_piece(node)}")
            for part in json_path.expressions:
                if isinstance(part, exp.JSONPathRoot):
                    continue
                if isinstance(part, exp.JSONPathKey) and isinstance(part.this, str):
                    path += _json_path_key(part.this)[1:]
                elif isinstance(part, exp.JSONPathSubscript) and isinstance(part.this, int):
                    path += f"[{part.this}]"
                else:
                    raise QueryRuleError(f"unsupported DATA path: {_piece(node)}")
            return base, path
        if isinstance(node, exp.Bracket) and len(node.expressions) == 1:
            key = node.expressions[0]
            if isinstance(key, exp.Literal) and key.is_string:
                return base, path + _json_path_key(key.this)[1:]
            if isinstance(key, exp.Literal) and key.is_int:
                return base, f"{path}[{int(key.this)}]"
        raise QueryRuleError(f"unsupported DATA path: {_piece(node)}")

    def _operands(self, nodes: Sequence[exp.Expression], scope: _Scope) -> list[_Sql]:
        """Translate operands compared with each other, normalising timestamp literals.

        A string literal compared with a timestamp becomes ``YYYY-MM-DDTHH:MM:SSZ``; a custom
        field compared with a timestamp (or a date-like literal) is normalised the same way in
        SQL, falling back to its raw value when it is not a date.
        """
        translated = {i: self._scalar(node, scope) for i, node in enumerate(nodes) if not _is_string(node)}
        temporal = any(sql.kind is _Kind.TIMESTAMP for sql in translated.values())
        has_custom = any(sql.kind is _Kind.CUSTOM for sql in translated.values())
        for i, node in enumerate(nodes):
            if i in translated:
                continue
            assert isinstance(node, exp.Literal)
            if temporal or (has_custom and is_timestamp_text(node.this)):
                translated[i] = _Sql(self.bind(self._timestamp_literal(node)), _Kind.TIMESTAMP)
                temporal = True
            else:
                translated[i] = _Sql(self.bind(node.this))
        if has_custom and not temporal:
            # A number custom field may hold 42 or "42" (the contacts API takes both). A NUMERIC
            # operand makes SQLite apply numeric affinity to the other side, as it would for a
            # NUMBER column: "42" compares as 42, "abc" stays text.
            for i, node in enumerate(nodes):
                if isinstance(node, exp.Literal) and not node.is_string:
                    translated[i] = _Sql(f"CAST({translated[i].text} AS NUMERIC)")
        result = [translated[i] for i in range(len(nodes))]
        if temporal:
            result = [
                _Sql(f"coalesce(strftime('{STORED_FORMAT}', {sql.text}), {sql.text})", _Kind.TIMESTAMP)
                if sql.kind is _Kind.CUSTOM
                else sql
                for sql in result
            ]
        return result

    def _timestamp_literal(self, node: exp.Literal) -> str:
        normalised = normalise_timestamp(node.this)
        if normalised is None:
            raise QueryRuleError(
                f"{_piece(node)} is not a timestamp: use ISO 8601, "
                "e.g. '2024-06-19T00:00:00Z' or '2024-06-19'"
            )
        return normalised

    def _comparison(self, node: exp.Expression, scope: _Scope) -> _Sql:
        operator = _COMPARISONS[type(node)]
        right_node = node.expression
        if isinstance(right_node, (exp.All, exp.Any)):
            membership = _SUBQUERY_MEMBERSHIP.get((type(node), type(right_node)))
            if membership is None:
                raise QueryRuleError(f"unsupported comparison with a subquery: {_piece(node)}")
            contact_id = self._contact_id_operand(node.this, scope, node)
            return _Sql(f"({contact_id} {membership} ({self._subquery(right_node.this, scope)}))")
        left, right = self._operands([node.this, right_node], scope)
        return _Sql(f"({left.text} {operator} {right.text})")

    def _contact_id_operand(self, node: exp.Expression, scope: _Scope, whole: exp.Expression) -> str:
        if not _is_column_named(node, "contact_id"):
            raise QueryRuleError(f"only contact_id can be matched against a subquery: {_piece(whole)}")
        assert isinstance(node, exp.Column)
        return self._column(node, scope).text

    def _is(self, node: exp.Is, scope: _Scope) -> _Sql:
        value = self._expr(node.this, scope)
        target = node.expression
        if isinstance(target, exp.Null):
            if value.kind is _Kind.ARRAY:
                # The store keeps "no values" as an empty array, never NULL.
                return _Sql(f"(json_array_length({value.text}) = 0)")
            return _Sql(f"({value.text} IS NULL)")
        if isinstance(target, exp.Boolean) and value.kind is not _Kind.ARRAY:
            return _Sql(f"({value.text} IS {'TRUE' if target.this else 'FALSE'})")
        raise QueryRuleError(f"unsupported IS test: {_piece(node)}")

    def _like(self, node: exp.Expression, scope: _Scope) -> _Sql:
        escape = ""
        if isinstance(node, exp.Escape):
            escape = f" ESCAPE {self._scalar(node.expression, scope).text}"
            node = node.this
            if not isinstance(node, (exp.Like, exp.ILike)):
                raise QueryRuleError(f"unsupported ESCAPE: {_piece(node)}")
        value, pattern = self._scalar(node.this, scope), self._scalar(node.expression, scope)
        # SQLite's LIKE already ignores ASCII case, so ILIKE maps onto it.
        return _Sql(f"({value.text} LIKE {pattern.text}{escape})")

    def _in(self, node: exp.In, scope: _Scope) -> _Sql:
        query = node.args.get("query")
        if query is not None:
            left = self._contact_id_operand(node.this, scope, node)
            return _Sql(f"({left} IN ({self._subquery(query, scope)}))")
        if node.args.get("unnest") or node.args.get("field") or not node.expressions:
            raise QueryRuleError(f"unsupported IN: {_piece(node)}")
        value, *items = self._operands([node.this, *node.expressions], scope)
        if value.kind is _Kind.CUSTOM:
            # IN applies no affinity from its list, so spell it as equalities (see _operands).
            return _Sql("(" + " OR ".join(f"{value.text} = {item.text}" for item in items) + ")")
        return _Sql(f"({value.text} IN ({', '.join(item.text for item in items)}))")

    def _array_contains(self, node: exp.ArrayContains, scope: _Scope) -> _Sql:
        # sqlglot stores Snowflake's order (value, array); SendGrid writes (array, value).
        # Whichever argument is an array column is the array, so both orders work.
        sendgrid_order = [node.expression, node.this]
        translated = [
            None if isinstance(arg, exp.Array) else self._expr(arg, scope) for arg in sendgrid_order
        ]
        arrays = [i for i, sql in enumerate(translated) if sql is not None and sql.kind is _Kind.ARRAY]
        if len(arrays) != 1:
            raise QueryRuleError(
                "array_contains needs one array column (list_ids, alternate_emails, email_domains) "
                f"and a value or [list of values]: {_piece(node)}"
            )
        array_sql = translated[arrays[0]]
        value_index = 1 - arrays[0]
        value_node, value_sql = sendgrid_order[value_index], translated[value_index]
        assert array_sql is not None
        if isinstance(value_node, exp.Array):
            items = [self._scalar(item, scope).text for item in value_node.expressions]
            if not items:
                return _Sql("0")
            condition = f"value IN ({', '.join(items)})"
        else:
            assert value_sql is not None
            if value_sql.kind is _Kind.ARRAY:
                raise QueryRuleError(
                    f"array_contains compares one array with values, not two arrays: {_piece(node)}"
                )
            condition = f"value = {value_sql.text}"
        return _Sql(f"EXISTS (SELECT 1 FROM json_each({array_sql.text}) WHERE {condition})")

    def _number_operand(self, node: exp.Expression, scope: _Scope) -> _Sql:
        result = self._scalar(node, scope)
        if result.kind is _Kind.TIMESTAMP:
            raise QueryRuleError(f"arithmetic on a timestamp supports only ± INTERVAL: {_piece(node)}")
        return result

    def _arithmetic(self, node: exp.Expression, scope: _Scope) -> _Sql:
        left_node, right_node = node.this, node.expression
        if isinstance(node, (exp.Add, exp.Sub)) and isinstance(right_node, exp.Interval):
            modifiers = self._interval_modifiers(right_node)
            if isinstance(node, exp.Sub):
                modifiers = [negate_modifier(modifier) for modifier in modifiers]
            return self._shift(left_node, modifiers, scope)
        if isinstance(node, exp.Add) and isinstance(left_node, exp.Interval):
            return self._shift(right_node, self._interval_modifiers(left_node), scope)
        left, right = self._number_operand(left_node, scope), self._number_operand(right_node, scope)
        return _Sql(f"({left.text} {_ARITHMETIC[type(node)]} {right.text})")

    def _interval_modifiers(self, node: exp.Interval) -> list[str]:
        quantity = node.this
        unit = node.args.get("unit")
        modifiers = None
        if isinstance(quantity, exp.Literal) and (unit is None or isinstance(unit, (exp.Var, exp.Literal))):
            modifiers = interval_modifiers(str(quantity.this), unit.name if unit is not None else None)
        if not modifiers:
            raise QueryRuleError(
                f"unsupported interval {_piece(node)}: use e.g. INTERVAL '7 days' "
                "(units: second, minute, hour, day, week, month, year)"
            )
        return modifiers

    def _timestamp_operand(self, node: exp.Expression, scope: _Scope, usage: str) -> str:
        """SQL for a value that must be a timestamp (a column, custom field, literal or function)."""
        if _is_string(node):
            assert isinstance(node, exp.Literal)
            return self.bind(self._timestamp_literal(node))
        value = self._scalar(node, scope)
        if value.kind not in (_Kind.TIMESTAMP, _Kind.CUSTOM):
            raise QueryRuleError(f"{usage} applies only to timestamps, not {_piece(node)}")
        return value.text

    def _shift(self, node: exp.Expression, modifiers: list[str], scope: _Scope) -> _Sql:
        """``timestamp`` moved by SQLite date modifiers, kept in the stored format."""
        base = self._timestamp_operand(node, scope, "± INTERVAL")
        bound = ", ".join(self.bind(modifier) for modifier in modifiers)
        return _Sql(f"strftime('{STORED_FORMAT}', {base}, {bound})", _Kind.TIMESTAMP)

    def _date_diff(self, node: exp.DateDiff, scope: _Scope) -> _Sql:
        """``DATEDIFF(unit, start, end)``: unit boundaries crossed from start to end, as Snowflake counts."""
        unit_node = node.args.get("unit")
        unit = canonical_unit(unit_node.name) if isinstance(unit_node, (exp.Var, exp.Literal)) else None
        if unit is None or unit == "week":
            raise QueryRuleError(
                f"unsupported {_piece(node)}: use DATEDIFF(<unit>, start, end) with a unit of "
                "second, minute, hour, day, month or year"
            )
        start = self._timestamp_operand(node.expression, scope, "DATEDIFF")
        end = self._timestamp_operand(node.this, scope, "DATEDIFF")
        if unit in _DIFF_SECONDS:
            truncated, seconds = _DIFF_SECONDS[unit]

            def epoch(value: str) -> str:
                return f"CAST(strftime('%s', strftime('{truncated}', {value})) AS INTEGER)"

            return _Sql(f"(({epoch(end)} - {epoch(start)}) / {seconds})")

        def months(value: str) -> str:
            year = f"CAST(strftime('%Y', {value}) AS INTEGER)"
            return year if unit == "year" else f"({year} * 12 + CAST(strftime('%m', {value}) AS INTEGER))"

        return _Sql(f"({months(end)} - {months(start)})")

    def _date_add(self, node: exp.Expression, scope: _Scope) -> _Sql:
        """``DATEADD(unit, n, ts)`` / ``TIMESTAMPADD``; ``n`` must be a whole-number literal."""
        amount = node.expression
        sign = 1
        if isinstance(amount, exp.Neg):
            sign, amount = -1, amount.this
        unit = node.args.get("unit")
        modifier = None
        if isinstance(amount, exp.Literal) and amount.is_int and isinstance(unit, (exp.Var, exp.Literal)):
            if isinstance(node, (exp.DateSub, exp.TimestampSub)):
                sign = -sign
            modifier = unit_modifier(sign * int(amount.this), unit.name)
        if modifier is None:
            raise QueryRuleError(
                f"unsupported {_piece(node)}: use DATEADD(day, -7, CURRENT_TIMESTAMP()) with a whole number "
                "and a unit of second, minute, hour, day, week, month or year"
            )
        return self._shift(node.this, [modifier], scope)

    def _cast(self, node: exp.Cast, scope: _Scope) -> _Sql:
        target = node.to
        if target.this in exp.DataType.TEMPORAL_TYPES:
            date_only = target.this == exp.DataType.Type.DATE
            if _is_string(node.this):
                assert isinstance(node.this, exp.Literal)
                normalised = self._timestamp_literal(node.this)
                if date_only:
                    normalised = normalised[:10] + "T00:00:00Z"
                return _Sql(self.bind(normalised), _Kind.TIMESTAMP)
            value = self._scalar(node.this, scope)
            if value.kind is _Kind.TIMESTAMP and not date_only:
                return value
            layout = "%Y-%m-%dT00:00:00Z" if date_only else STORED_FORMAT
            return _Sql(f"strftime('{layout}', {value.text})", _Kind.TIMESTAMP)
        value = self._scalar(node.this, scope)
        if target.this in exp.DataType.TEXT_TYPES:
            return _Sql(f"CAST({value.text} AS TEXT)")
        if target.this in exp.DataType.NUMERIC_TYPES or target.this == exp.DataType.Type.BOOLEAN:
            return _Sql(f"CAST({value.text} AS NUMERIC)")
        raise QueryRuleError(f"unsupported cast in query_dsl: {_piece(node)}")

    def _aggregate(self, node: exp.Max, scope: _Scope) -> _Sql:
        if node.expressions:
            raise QueryRuleError(f"MAX takes one argument: {_piece(node)}")
        value = self._scalar(node.this, scope)
        return _Sql(f"MAX({value.text})", value.kind)


def _shown(value: object) -> str:
    return _piece(value) if isinstance(value, exp.Expr) else ""


def _is_column_named(node: exp.Expression, name: str) -> bool:
    return isinstance(node, exp.Column) and not isinstance(node.this, exp.Star) and node.name.lower() == name


def _is_string(node: exp.Expression) -> bool:
    return isinstance(node, exp.Literal) and node.is_string


def _literal_value(node: exp.Literal) -> object:
    if node.is_string:
        return str(node.this)
    text = str(node.this)
    try:
        return int(text)
    except ValueError:
        return float(text)


def _json_path_key(key: str) -> str:
    """``$."key"``: quoted so any field name is read as one key."""
    if '"' in key:
        raise QueryRuleError(f"a JSON key cannot contain a double quote: {key!r}")
    return f'$."{key}"'


def _unknown_column_message(node: exp.Column, table: str | None) -> str:
    where = {
        CONTACT_DATA: "contact_data has no such column and there is no custom field by that name",
        EVENT_DATA: f"event_data columns are {', '.join(sorted(EVENT_COLUMNS))}",
        None: "it is not a contact_data column, a custom field or an event_data column",
    }[table]
    hint = " (double quotes name a column: write text in single quotes)" if node.this.quoted else ""
    return f"unknown column {_piece(node)}: {where}{hint}"

"""Translate a rule-checked ``query_dsl`` syntax tree into one SQLite SELECT (no I/O).

Walks the sqlglot tree, binding every literal as a parameter; the caller binds ``:now``. Rule
checks that need no translation live in :mod:`.rules`, timestamp and interval text in :mod:`.time`.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from sqlglot import exp

from .rules import (
    CONTACT_COLUMNS,
    CONTACT_DATA,
    EVENT_COLUMNS,
    EVENT_DATA,
    SELECT_SHAPE,
    Kind,
    QueryRuleError,
    check_clauses,
    check_group,
    is_column_named,
    is_string,
    json_path_key,
    parse_single_select,
    piece,
    unknown_column_message,
)
from .time import (
    STORED_FORMAT,
    canonical_unit,
    interval_modifiers,
    is_timestamp_text,
    negate_modifier,
    normalise_timestamp,
    unit_modifier,
)


@dataclass(frozen=True)
class CompiledQuery:
    """A SQLite SELECT returning the distinct ``contact_id`` of every matching contact."""

    sql: str
    params: dict[str, object]
    uses_events: bool


@dataclass(frozen=True)
class _Sql:
    text: str
    kind: Kind = Kind.VALUE


_STORE_TABLES = {CONTACT_DATA: "contacts", EVENT_DATA: "events"}
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


def compile_query(query_dsl: str, custom_fields: Mapping[str, str] | Collection[str] = ()) -> CompiledQuery:
    """Check ``query_dsl`` against SendGrid's rules and translate it to SQLite.

    ``custom_fields`` maps the account's custom field names (matched case-insensitively) to the
    key of their values in ``contacts.custom_fields`` (the field id); a plain collection of names
    means the values are keyed by name.
    Raises :class:`QuerySyntaxError` or :class:`QueryRuleError`.
    """
    select = parse_single_select(query_dsl)
    compiler = _Compiler(custom_fields)
    sql = compiler.main_select(select)
    return CompiledQuery(sql=sql, params=dict(compiler.params), uses_events=compiler.uses_events)


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
        check_clauses(select, allowed={"group", "having"})
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
                check_group(group)
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
            raise QueryRuleError(f"a subquery must be a single plain SELECT: {piece(node)}")
        check_clauses(select, allowed=set())
        from_source = self._from_source(select, allowed_tables=(EVENT_DATA, CONTACT_DATA))
        scope = _Scope([from_source], parent)
        joins = self._joins(select, scope)
        items = select.expressions
        if len(items) != 1 or not is_column_named(items[0], "contact_id"):
            listed = ", ".join(piece(item) for item in items)
            raise QueryRuleError(f"a subquery must select only contact_id, not: {listed}")
        column = self._column(items[0], scope)
        parts = [
            f"SELECT {column.text}",
            f"FROM {_STORE_TABLES[from_source.table]} AS {from_source.sql_alias}",
            *joins,
            *self._where(select, scope),
        ]
        return " ".join(parts)

    def _from_source(self, select: exp.Select, allowed_tables: Sequence[str]) -> _Source:
        from_clause = select.args.get("from_") or select.args.get("from")
        if from_clause is None:
            raise QueryRuleError(f"query_dsl has no FROM: write {SELECT_SHAPE}")
        return self._source(from_clause.this, allowed_tables, role="FROM")

    def _source(self, node: exp.Expression, allowed_tables: Sequence[str], role: str) -> _Source:
        if not isinstance(node, exp.Table) or not isinstance(node.this, exp.Identifier):
            raise QueryRuleError(f"{role} must name a table ({' or '.join(allowed_tables)}): {piece(node)}")
        if node.args.get("db") or node.args.get("catalog"):
            raise QueryRuleError(f"{role} table must not be qualified: {piece(node)}")
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
                raise QueryRuleError(f"only JOIN / INNER JOIN is supported, not: {piece(join)}")
            source = self._source(join.this, (EVENT_DATA,), role="JOIN")
            if any(existing.name == source.name for existing in scope.sources):
                raise QueryRuleError(f"table alias {source.name!r} is used twice: {piece(join)}")
            partner = self._join_partner(join, scope, source)
            scope.sources.append(source)
            rendered.append(
                f"JOIN {_STORE_TABLES[source.table]} AS {source.sql_alias} "
                f"ON {source.sql_alias}.contact_id = {partner.sql_alias}.contact_id"
            )
        return rendered

    def _join_partner(self, join: exp.Join, scope: _Scope, joined: _Source) -> _Source:
        """The already-listed table the join links to; the condition must be on contact_id only."""
        rule = f"JOIN event_data must be ON contact_id = contact_id only, not: {piece(join)}"
        using = join.args.get("using")
        on = join.args.get("on")
        while isinstance(on, exp.Paren):
            on = on.this
        if not using and on is None:
            raise QueryRuleError(
                f"{piece(join.this)} must be joined with JOIN ... ON contact_id = contact_id"
            )
        if using:
            if [identifier.name.lower() for identifier in using] != ["contact_id"]:
                raise QueryRuleError(rule)
            return scope.sources[0]
        if isinstance(on, exp.Column) and is_column_named(on, "contact_id"):
            sides: list[exp.Expression] = [on]
        elif isinstance(on, exp.EQ) and all(
            is_column_named(side, "contact_id") for side in (on.this, on.expression)
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
                raise QueryRuleError(f"unknown table or alias {qualifier!r} in JOIN condition: {piece(join)}")
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
                    f"{piece(item)} needs an alias, e.g. MAX(e.event_timestamp) AS last_event_at"
                )
            if isinstance(item, exp.Star) or (
                isinstance(item, exp.Column) and isinstance(item.this, exp.Star)
            ):
                raise QueryRuleError("SELECT * is not allowed: select exactly contact_id, updated_at")
            if isinstance(item, exp.Alias) and isinstance(item.this, exp.Column):
                raise QueryRuleError(
                    f"select contact_id and updated_at without an alias, not {piece(item)} "
                    "(is a comma missing?)"
                )
            if not (is_column_named(item, "contact_id") or is_column_named(item, "updated_at")):
                raise QueryRuleError(
                    f"{piece(item)} cannot be selected: only contact_id, updated_at "
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
        if result.kind is Kind.ARRAY:
            raise QueryRuleError(
                f"{piece(node)} is an array: use array_contains({piece(node)}, 'value') or ARRAY_SIZE"
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
            if array.kind is not Kind.ARRAY:
                raise QueryRuleError(f"ARRAY_SIZE needs an array column: {piece(node)}")
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
            return _Sql(":now", Kind.TIMESTAMP)
        if isinstance(node, exp.CurrentDate):
            return _Sql("strftime('%Y-%m-%dT00:00:00Z', :now)", Kind.TIMESTAMP)
        if isinstance(node, (exp.DateAdd, exp.TimestampAdd, exp.DateSub, exp.TimestampSub)):
            return self._date_add(node, scope)
        if isinstance(node, exp.DateDiff):
            return self._date_diff(node, scope)
        if isinstance(node, exp.Cast):
            return self._cast(node, scope)
        if isinstance(node, exp.Max):
            if not self._in_having:
                raise QueryRuleError(f"{piece(node)} is allowed only in the select list and HAVING")
            return self._aggregate(node, scope)
        if isinstance(node, exp.Interval):
            raise QueryRuleError(f"{piece(node)} can only be added to or subtracted from a timestamp")
        if isinstance(node, exp.Func):
            raise QueryRuleError(f"unsupported function in query_dsl: {piece(node)}")
        raise QueryRuleError(f"unsupported expression in query_dsl: {piece(node)}")

    def _column(self, node: exp.Column, scope: _Scope) -> _Sql:
        if isinstance(node.this, exp.Star):
            raise QueryRuleError(f"{piece(node)} is not allowed here")
        if node.args.get("db") or node.args.get("catalog"):
            raise QueryRuleError(f"column {piece(node)} has too many qualifiers: use alias.column")
        name = node.name.lower()
        qualifier = node.table.lower()
        if qualifier:
            source = scope.find(qualifier)
            if source is None:
                raise QueryRuleError(f"unknown table or alias {node.table!r} in {piece(node)}")
            resolved = self._source_column(source, name)
            if resolved is None:
                raise QueryRuleError(unknown_column_message(node, source.table))
            return resolved
        if self._in_having and name in self._max_aliases:
            return self._max_aliases[name]
        for level in scope.chain():
            for source in level.sources:
                resolved = self._source_column(source, name)
                if resolved is not None:
                    return resolved
        raise QueryRuleError(unknown_column_message(node, None))

    def _source_column(self, source: _Source, name: str) -> _Sql | None:
        if source.table == EVENT_DATA:
            if name not in EVENT_COLUMNS:
                return None
            column, kind = EVENT_COLUMNS[name]
            return _Sql(f"{source.sql_alias}.{column}", kind)
        if name in CONTACT_COLUMNS:
            return _Sql(f"{source.sql_alias}.{name}", CONTACT_COLUMNS[name])
        if name in self._custom_fields:
            path = self.bind(json_path_key(self._custom_fields[name]))
            return _Sql(f"json_extract({source.sql_alias}.custom_fields, {path})", Kind.CUSTOM)
        return None

    def _variant_path(self, node: exp.Expression, scope: _Scope) -> _Sql:
        """``e.DATA:payload.unique_args.id`` or ``e.DATA['key'][0]`` -> ``json_extract(data, path)``."""
        base, path = self._variant_base_and_path(node, scope)
        return _Sql(f"json_extract({base}, {self.bind(path)})")

    def _variant_base_and_path(self, node: exp.Expression, scope: _Scope) -> tuple[str, str]:
        if isinstance(node, exp.Column):
            column = self._column(node, scope)
            if column.kind is not Kind.VARIANT:
                raise QueryRuleError(
                    f"paths (':' or '[...]') apply only to event_data DATA, not {piece(node)}"
                )
            return column.text, "$"
        base, path = self._variant_base_and_path(node.this, scope)
        if isinstance(node, exp.JSONExtract):
            json_path = node.expression
            if not isinstance(json_path, exp.JSONPath):
                raise QueryRuleError(f"unsupported DATA path: {piece(node)}")
            for part in json_path.expressions:
                if isinstance(part, exp.JSONPathRoot):
                    continue
                if isinstance(part, exp.JSONPathKey) and isinstance(part.this, str):
                    path += json_path_key(part.this)[1:]
                elif isinstance(part, exp.JSONPathSubscript) and isinstance(part.this, int):
                    path += f"[{part.this}]"
                else:
                    raise QueryRuleError(f"unsupported DATA path: {piece(node)}")
            return base, path
        if isinstance(node, exp.Bracket) and len(node.expressions) == 1:
            key = node.expressions[0]
            if isinstance(key, exp.Literal) and key.is_string:
                return base, path + json_path_key(key.this)[1:]
            if isinstance(key, exp.Literal) and key.is_int:
                return base, f"{path}[{int(key.this)}]"
        raise QueryRuleError(f"unsupported DATA path: {piece(node)}")

    def _operands(self, nodes: Sequence[exp.Expression], scope: _Scope) -> list[_Sql]:
        """Translate operands compared with each other, normalising timestamp literals.

        A string literal compared with a timestamp becomes ``YYYY-MM-DDTHH:MM:SSZ``; a custom
        field compared with a timestamp (or a date-like literal) is normalised the same way in
        SQL, falling back to its raw value when it is not a date.
        """
        translated = {i: self._scalar(node, scope) for i, node in enumerate(nodes) if not is_string(node)}
        temporal = any(sql.kind is Kind.TIMESTAMP for sql in translated.values())
        has_custom = any(sql.kind is Kind.CUSTOM for sql in translated.values())
        for i, node in enumerate(nodes):
            if i in translated:
                continue
            assert isinstance(node, exp.Literal)
            if temporal or (has_custom and is_timestamp_text(node.this)):
                translated[i] = _Sql(self.bind(self._timestamp_literal(node)), Kind.TIMESTAMP)
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
                _Sql(f"coalesce(strftime('{STORED_FORMAT}', {sql.text}), {sql.text})", Kind.TIMESTAMP)
                if sql.kind is Kind.CUSTOM
                else sql
                for sql in result
            ]
        return result

    def _timestamp_literal(self, node: exp.Literal) -> str:
        normalised = normalise_timestamp(node.this)
        if normalised is None:
            raise QueryRuleError(
                f"{piece(node)} is not a timestamp: use ISO 8601, e.g. '2024-06-19T00:00:00Z' or '2024-06-19'"
            )
        return normalised

    def _comparison(self, node: exp.Expression, scope: _Scope) -> _Sql:
        operator = _COMPARISONS[type(node)]
        right_node = node.expression
        if isinstance(right_node, (exp.All, exp.Any)):
            membership = _SUBQUERY_MEMBERSHIP.get((type(node), type(right_node)))
            if membership is None:
                raise QueryRuleError(f"unsupported comparison with a subquery: {piece(node)}")
            contact_id = self._contact_id_operand(node.this, scope, node)
            return _Sql(f"({contact_id} {membership} ({self._subquery(right_node.this, scope)}))")
        left, right = self._operands([node.this, right_node], scope)
        return _Sql(f"({left.text} {operator} {right.text})")

    def _contact_id_operand(self, node: exp.Expression, scope: _Scope, whole: exp.Expression) -> str:
        if not is_column_named(node, "contact_id"):
            raise QueryRuleError(f"only contact_id can be matched against a subquery: {piece(whole)}")
        assert isinstance(node, exp.Column)
        return self._column(node, scope).text

    def _is(self, node: exp.Is, scope: _Scope) -> _Sql:
        value = self._expr(node.this, scope)
        target = node.expression
        if isinstance(target, exp.Null):
            if value.kind is Kind.ARRAY:
                # The store keeps "no values" as an empty array, never NULL.
                return _Sql(f"(json_array_length({value.text}) = 0)")
            return _Sql(f"({value.text} IS NULL)")
        if isinstance(target, exp.Boolean) and value.kind is not Kind.ARRAY:
            return _Sql(f"({value.text} IS {'TRUE' if target.this else 'FALSE'})")
        raise QueryRuleError(f"unsupported IS test: {piece(node)}")

    def _like(self, node: exp.Expression, scope: _Scope) -> _Sql:
        escape = ""
        if isinstance(node, exp.Escape):
            escape = f" ESCAPE {self._scalar(node.expression, scope).text}"
            node = node.this
            if not isinstance(node, (exp.Like, exp.ILike)):
                raise QueryRuleError(f"unsupported ESCAPE: {piece(node)}")
        value, pattern = self._scalar(node.this, scope), self._scalar(node.expression, scope)
        # SQLite's LIKE already ignores ASCII case, so ILIKE maps onto it.
        return _Sql(f"({value.text} LIKE {pattern.text}{escape})")

    def _in(self, node: exp.In, scope: _Scope) -> _Sql:
        query = node.args.get("query")
        if query is not None:
            left = self._contact_id_operand(node.this, scope, node)
            return _Sql(f"({left} IN ({self._subquery(query, scope)}))")
        if node.args.get("unnest") or node.args.get("field") or not node.expressions:
            raise QueryRuleError(f"unsupported IN: {piece(node)}")
        value, *items = self._operands([node.this, *node.expressions], scope)
        if value.kind is Kind.CUSTOM:
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
        arrays = [i for i, sql in enumerate(translated) if sql is not None and sql.kind is Kind.ARRAY]
        if len(arrays) != 1:
            raise QueryRuleError(
                "array_contains needs one array column (list_ids, alternate_emails, email_domains) "
                f"and a value or [list of values]: {piece(node)}"
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
            if value_sql.kind is Kind.ARRAY:
                raise QueryRuleError(
                    f"array_contains compares one array with values, not two arrays: {piece(node)}"
                )
            condition = f"value = {value_sql.text}"
        return _Sql(f"EXISTS (SELECT 1 FROM json_each({array_sql.text}) WHERE {condition})")

    def _number_operand(self, node: exp.Expression, scope: _Scope) -> _Sql:
        result = self._scalar(node, scope)
        if result.kind is Kind.TIMESTAMP:
            raise QueryRuleError(f"arithmetic on a timestamp supports only ± INTERVAL: {piece(node)}")
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
                f"unsupported interval {piece(node)}: use e.g. INTERVAL '7 days' "
                "(units: second, minute, hour, day, week, month, year)"
            )
        return modifiers

    def _timestamp_operand(self, node: exp.Expression, scope: _Scope, usage: str) -> str:
        """SQL for a value that must be a timestamp (a column, custom field, literal or function)."""
        if is_string(node):
            assert isinstance(node, exp.Literal)
            return self.bind(self._timestamp_literal(node))
        value = self._scalar(node, scope)
        if value.kind not in (Kind.TIMESTAMP, Kind.CUSTOM):
            raise QueryRuleError(f"{usage} applies only to timestamps, not {piece(node)}")
        return value.text

    def _shift(self, node: exp.Expression, modifiers: list[str], scope: _Scope) -> _Sql:
        """``timestamp`` moved by SQLite date modifiers, kept in the stored format."""
        base = self._timestamp_operand(node, scope, "± INTERVAL")
        bound = ", ".join(self.bind(modifier) for modifier in modifiers)
        return _Sql(f"strftime('{STORED_FORMAT}', {base}, {bound})", Kind.TIMESTAMP)

    def _date_diff(self, node: exp.DateDiff, scope: _Scope) -> _Sql:
        """``DATEDIFF(unit, start, end)``: unit boundaries crossed from start to end, as Snowflake counts."""
        unit_node = node.args.get("unit")
        unit = canonical_unit(unit_node.name) if isinstance(unit_node, (exp.Var, exp.Literal)) else None
        if unit is None or unit == "week":
            raise QueryRuleError(
                f"unsupported {piece(node)}: use DATEDIFF(<unit>, start, end) with a unit of "
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
                f"unsupported {piece(node)}: use DATEADD(day, -7, CURRENT_TIMESTAMP()) with a whole number "
                "and a unit of second, minute, hour, day, week, month or year"
            )
        return self._shift(node.this, [modifier], scope)

    def _cast(self, node: exp.Cast, scope: _Scope) -> _Sql:
        target = node.to
        if target.this in exp.DataType.TEMPORAL_TYPES:
            date_only = target.this == exp.DataType.Type.DATE
            if is_string(node.this):
                assert isinstance(node.this, exp.Literal)
                normalised = self._timestamp_literal(node.this)
                if date_only:
                    normalised = normalised[:10] + "T00:00:00Z"
                return _Sql(self.bind(normalised), Kind.TIMESTAMP)
            value = self._scalar(node.this, scope)
            if value.kind is Kind.TIMESTAMP and not date_only:
                return value
            layout = "%Y-%m-%dT00:00:00Z" if date_only else STORED_FORMAT
            return _Sql(f"strftime('{layout}', {value.text})", Kind.TIMESTAMP)
        value = self._scalar(node.this, scope)
        if target.this in exp.DataType.TEXT_TYPES:
            return _Sql(f"CAST({value.text} AS TEXT)")
        if target.this in exp.DataType.NUMERIC_TYPES or target.this == exp.DataType.Type.BOOLEAN:
            return _Sql(f"CAST({value.text} AS NUMERIC)")
        raise QueryRuleError(f"unsupported cast in query_dsl: {piece(node)}")

    def _aggregate(self, node: exp.Max, scope: _Scope) -> _Sql:
        if node.expressions:
            raise QueryRuleError(f"MAX takes one argument: {piece(node)}")
        value = self._scalar(node.this, scope)
        return _Sql(f"MAX({value.text})", value.kind)


def _literal_value(node: exp.Literal) -> object:
    if node.is_string:
        return str(node.this)
    text = str(node.this)
    try:
        return int(text)
    except ValueError:
        return float(text)

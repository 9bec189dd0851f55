"""Read Single Send stats and land them where analysts look: a warehouse table or CSV files."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset, AssetAlias

from airflow_provider_sgseg.links import SendGridSingleSendLink, push_link_data
from airflow_provider_sgseg.operators.base import SendGridBaseOperator
from airflow_provider_sgseg.rules import summaries, validation

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_sgseg.rules import stats

# The alias a stats task emits one Asset event per landed Single Send through (default outlet).
STATS_ASSET_ALIAS = "sendgrid_single_send_stats"
STATS_ASSET_PREFIX = "x-sendgrid://stats/singlesends/"


def stats_asset(single_send_id: str) -> Asset:
    """The Asset of one Single Send's landed stats: ``x-sendgrid://stats/singlesends/<id>``."""
    return Asset(uri=f"{STATS_ASSET_PREFIX}{single_send_id}", name=f"sendgrid_stats_{single_send_id}")


class SendGridSingleSendStatsOperator(SendGridBaseOperator):
    """Read the stats of Single Sends (totals, per day or in total, per A/B variation and phase,
    per link) through every page, and land them in tables and/or CSV files.

    Which Single Sends: ``single_send_ids`` (templated; a list or comma-separated text), else every
    sent Single Send matching all given filters: ``name`` (shell pattern), ``category``, and
    ``sent_in_data_interval`` (``send_at`` within the run's data interval).

    Reads (fewest the API allows): ``GET /v3/marketing/singlesends`` (100 per page, for ``send_at``
    and the filters; explicit ids are read one by one, ``GET /v3/marketing/singlesends/{id}``,
    when that is fewer requests); ``GET /v3/marketing/stats/singlesends`` (all-time totals, 25 ids per
    request); per Single Send ``GET /v3/marketing/stats/singlesends/{id}`` (``aggregated_by``,
    its ``send_at`` date to today in ``timezone``, ``group_by``; 50 rows per page: one page for up
    to 50 days without A/B; skipped for ``aggregated_by="total"`` without ``group_by``) and
    ``GET .../{id}/links`` (50 links per page) when ``links_table`` or a file destination is set.

    Landed rows: the stats table has one row per (``single_send_id``, ``aggregation`` -- the date
    or ``"total"`` --, ``ab_variation``, ``ab_phase``) with the 12 metric columns, ``timezone``,
    ``provisional`` and ``landed_at``; the all-time totals are the ``"total"``/``"all"``/``"all"``
    rows. The links table has one row per (``single_send_id``, ``url_location``, ``ab_variation``,
    ``ab_phase``) with ``url``, ``clicks`` and ``unique_clicks`` (NULL: SendGrid's spec gives no
    per-link unique clicks). Schemas, DDL and idempotency: ``docs/results.md``.

    :param single_send_ids: Single Send UUIDs (templated), or None to select by the filters.
    :param aggregated_by: ``"day"`` (default) or ``"total"``.
    :param timezone: IANA zone of the day rows (templated); default ``"UTC"``.
    :param group_by: A/B grouping of the per-send rows and links; default both
        ``("ab_variation", "ab_phase")``; ``()`` for none.
    :param destination_conn_id: a common-sql connection (SQLite, PostgreSQL, any ``DbApiHook``):
        land in ``table`` and ``links_table`` there (templated). None: no tables.
    :param table: stats table name, optionally ``schema.table`` (templated); default
        ``sendgrid_single_send_stats``.
    :param links_table: links table name (templated); default ``sendgrid_single_send_links``.
    :param destination_path: an ``ObjectStoragePath`` (or URL, templated) to write
        ``<table>.csv`` and ``<links_table>.csv`` under, atomically. None: no files.
    :param name: select sent Single Sends whose name matches this shell pattern (templated).
    :param category: select sent Single Sends with this category (templated).
    :param sent_in_data_interval: select sent Single Sends whose ``send_at`` is in the data interval
        (a run without one, e.g. Asset-triggered, raises ``SendGridInputError``).
    :param provisional: mark the landed rows provisional (templated; e.g. the stats sensor's XCom).
    :raises SendGridInputError: a bad argument, naming it (before any request where knowable).
    :raises AirflowFailException: an explicit id SendGrid does not list.

    Returns (XCom) a compact summary, never the rows: ``{"single_send_ids", "stats_rows",
    "link_rows", "table", "links_table", "files", "provisional", "totals"}`` (``totals``:
    requests, delivered, unique_opens, unique_clicks summed over the landed Single Sends). Each
    landing emits an Asset event per Single Send whose rows landed (``x-sendgrid://stats/singlesends/<id>``;
    none without a destination, none for a Single Send without stats) through the ``AssetAlias``
    ``sendgrid_single_send_stats`` (the default outlet), and attaches the summary to the events
    of any ``Asset`` outlets (e.g. the table's asset; ``single_send_ids``: those that landed).
    """

    template_fields: Sequence[str] = (
        "single_send_ids",
        "timezone",
        "destination_conn_id",
        "table",
        "links_table",
        "destination_path",
        "name",
        "category",
        "provisional",
        "sendgrid_conn_id",
    )
    operator_extra_links = (SendGridSingleSendLink(),)

    def __init__(
        self,
        *,
        single_send_ids: Sequence[str] | str | None = None,
        aggregated_by: str = "day",
        timezone: str = "UTC",
        destination_conn_id: str | None = None,
        table: str | None = None,
        links_table: str | None = None,
        destination_path: Any = None,
        group_by: Sequence[str] = validation.STATS_GROUP_BY,
        name: str | None = None,
        category: str | None = None,
        sent_in_data_interval: bool = False,
        provisional: bool | str = False,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("outlets", [AssetAlias(STATS_ASSET_ALIAS)])
        super().__init__(**kwargs)
        self.single_send_ids = single_send_ids
        self.aggregated_by = validation.aggregated_by(aggregated_by)
        self.group_by = validation.stats_group_by(group_by)
        self.timezone = timezone
        self.destination_conn_id = destination_conn_id
        self.table = table
        self.links_table = links_table
        self.destination_path = destination_path
        self.name = name
        self.category = category
        self.sent_in_data_interval = validation.flag("sent_in_data_interval", sent_in_data_interval)
        self.provisional = provisional

    def execute(self, context: Context) -> dict[str, Any]:
        """Read, land, emit the Asset events; returns the summary (class docstring)."""
        from airflow_provider_sgseg.exceptions import SendGridInputError
        from airflow_provider_sgseg.operators import _stats_landing as landing
        from airflow_provider_sgseg.rules import stats

        interval = (context.get("data_interval_start"), context.get("data_interval_end"))
        if self.sent_in_data_interval and None in interval:
            # Asset-triggered and most manual runs have none: the filter would silently select all.
            raise SendGridInputError(
                "sent_in_data_interval", True, "needs a run with a data interval; this run has none"
            )
        chosen_from = stats.selection(
            self.single_send_ids,
            name=self.name,
            category=self.category,
            sent_from=interval[0] if self.sent_in_data_interval else None,
            sent_to=interval[1] if self.sent_in_data_interval else None,
        )
        timezone = validation.time_zone(self.timezone, "timezone")
        provisional = validation.flag("provisional", self.provisional)
        table = landing.table_name(self.table or landing.DEFAULT_TABLE, "table")
        links_table = landing.table_name(self.links_table or landing.DEFAULT_LINKS_TABLE, "links_table")
        sql_hook = self._sql_hook() if self.destination_conn_id is not None else None
        single_sends = self._chosen(chosen_from)
        ids = [str(item["id"]) for item in single_sends]
        # One page per link: the stats link names a Single Send only when the task read just one.
        push_link_data(context, self.hook, single_send_id=ids[0] if len(ids) == 1 else None)
        wants_links = self.destination_conn_id is not None or self.destination_path is not None
        stats_rows, link_rows = self._read(single_sends, timezone, provisional, wants_links)

        files: list[str] = []
        if sql_hook is not None:
            landing.land_tables(sql_hook, table, links_table, ids, stats_rows, link_rows)
        if self.destination_path is not None:
            files = landing.land_files(self.destination_path, table, links_table, stats_rows, link_rows)
        result = {
            **stats.summary(stats_rows, len(link_rows), ids),
            "table": table if self.destination_conn_id is not None else None,
            "links_table": links_table if self.destination_conn_id is not None else None,
            "files": files,
            "provisional": provisional,
        }
        self._emit(context, self._landed(ids, stats_rows), result)
        self.log.info("%s", summaries.stats_landed(result))
        return result

    def _chosen(self, selection: stats.Selection) -> list[dict[str, Any]]:
        from airflow_provider_sgseg.version_compat import AirflowFailException

        if selection.ids is None:
            return selection.choose(self.hook.list_single_sends())
        chosen = self._explicit(selection.ids)
        missing = sorted(set(selection.ids) - {str(item["id"]) for item in chosen})
        if missing:
            raise AirflowFailException(f"SendGrid lists no Single Send with id(s) {', '.join(missing)}")
        return chosen

    def _explicit(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        """The Single Sends of explicit ``ids`` (in their order; unknown ones left out) in the
        fewest reads: pages of ``GET /v3/marketing/singlesends`` (100 each) until reading each id
        not found yet by ``GET /v3/marketing/singlesends/{id}`` costs no more than the pages left
        (one id: read by id at once; an account size SendGrid does not give: list on)."""
        import contextlib
        import math

        from airflow_provider_sgseg.exceptions import SendGridNotFoundError
        from airflow_provider_sgseg.hooks.marketing import MAX_PAGES
        from airflow_provider_sgseg.rules.requests import SINGLE_SENDS_PAGE_SIZE, SingleSendsPage

        found: dict[str, dict[str, Any]] = {}
        pages_left, token = 1, None  # before the first page: at least one
        for page in range(1, MAX_PAGES + 1):
            if len([item for item in ids if item not in found]) <= pages_left:
                break
            items, token, count = self.hook.run(SingleSendsPage(token))
            found.update((str(item.get("id")), item) for item in items if str(item.get("id")) in ids)
            if token is None:  # the whole list read: an id not in it does not exist
                return [found[item] for item in ids if item in found]
            pages_left = 0 if count is None else max(math.ceil(count / SINGLE_SENDS_PAGE_SIZE) - page, 1)
        for item in ids:
            if item not in found:
                with contextlib.suppress(SendGridNotFoundError):  # left to the caller to report
                    found[item] = self.hook.get_single_send(item)
        return [found[item] for item in ids if item in found]

    def _read(
        self, single_sends: list[dict[str, Any]], timezone: str, provisional: bool, wants_links: bool
    ) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        from airflow_provider_sgseg.rules import stats

        now = self.now()
        landed_at = now.isoformat()
        ids = [str(item["id"]) for item in single_sends]
        rows = (
            [
                stats.stats_row(result, timezone, provisional, landed_at)
                for result in self.hook.list_single_send_stats(ids)
            ]
            if ids
            else []
        )
        links: list[tuple[Any, ...]] = []
        per_send = self.aggregated_by == "day" or bool(self.group_by)
        for single_send in single_sends:
            single_send_id = str(single_send["id"])
            if per_send:
                start, end = stats.date_range(single_send.get("send_at"), now, timezone)
                results = self.hook.get_single_send_stats(
                    single_send_id,
                    start_date=start,
                    end_date=end,
                    aggregated_by=self.aggregated_by,
                    timezone=timezone,
                    group_by=self.group_by,
                )
                # The ungrouped all-time totals come from the list read above.
                rows.extend(
                    stats.stats_row(result, timezone, provisional, landed_at)
                    for result in results
                    if not (
                        result.get("aggregation") == "total"
                        and result.get("ab_variation") == "all"
                        and result.get("ab_phase") == "all"
                    )
                )
            if wants_links:
                links.extend(
                    stats.link_row(single_send_id, result, landed_at)
                    for result in self.hook.get_single_send_link_stats(single_send_id, group_by=self.group_by)
                )
        return rows, links

    def _sql_hook(self) -> Any:
        from airflow.providers.common.sql.hooks.sql import DbApiHook

        from airflow_provider_sgseg.exceptions import SendGridInputError
        from airflow_provider_sgseg.version_compat import BaseHook

        hook = BaseHook.get_connection(str(self.destination_conn_id)).get_hook()  # type: ignore[no-untyped-call]
        if not isinstance(hook, DbApiHook):
            raise SendGridInputError(
                "destination_conn_id", self.destination_conn_id, "must be a SQL connection (a DbApiHook)"
            )
        return hook

    def _landed(self, ids: list[str], stats_rows: list[tuple[Any, ...]]) -> list[str]:
        """The ids whose rows landed: an Asset event means "results landed", so a Single Send
        without stats (a draft) or a task without a destination emits none."""
        if self.destination_conn_id is None and self.destination_path is None:
            return []
        with_rows = {row[0] for row in stats_rows}  # STATS_COLUMNS[0]: single_send_id
        without = [item for item in ids if item not in with_rows]
        if without:
            self.log.info("No stats for Single Send(s) %s (not sent?): no Asset event", ", ".join(without))
        return [item for item in ids if item in with_rows]

    def _emit(self, context: Context, ids: list[str], result: dict[str, Any]) -> None:
        extra: dict[str, Any] = {key: result[key] for key in ("table", "links_table", "files", "provisional")}
        # Airflow 3.0 hashes the extra of an event emitted through an alias (a list value fails the
        # whole task at its end, "unhashable type: 'list'"): there, `files` is one line per file.
        alias_extra = {**extra, "files": "\n".join(extra["files"] or ())}
        for outlet in self.outlets:
            if isinstance(outlet, AssetAlias):
                for single_send_id in ids:
                    context["outlet_events"][outlet].add(stats_asset(single_send_id), extra=alias_extra)
            elif isinstance(outlet, Asset):
                context["outlet_events"][outlet].extra = {**extra, "single_send_ids": list[Any](ids)}

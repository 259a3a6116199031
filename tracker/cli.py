"""The `tracker` command. Usage errors print one line saying what is valid and exit 2."""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import sys
from datetime import timedelta

import click
import pandas as pd

from tracker import catalog as catalog_mod
from tracker import departments as dept_mod

FORMATS = click.Choice(["table", "csv", "json"])
AREA_TYPES = ["england", "region", "icb", "utla", "ltla"]


def emit(frame: pd.DataFrame, fmt: str, title: str | None = None) -> None:
    if fmt == "csv":
        frame.to_csv(sys.stdout, index=False)
    elif fmt == "json":
        click.echo(frame.to_json(orient="records", indent=2, date_format="iso", force_ascii=False))
    elif not sys.stdout.isatty():
        _plain_table(frame, title)
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title, show_lines=False)
        for col in frame.columns:
            table.add_column(str(col), overflow="fold")
        for row in frame.itertuples(index=False):
            table.add_row(*["" if pd.isna(v) else str(v) for v in row])
        Console().print(table)


def _plain_table(frame: pd.DataFrame, title: str | None) -> None:
    """A table for a log or a pipe (stdout is not a terminal): the title, then one line per row, columns padded to
    their widest cell and never wrapped, so a log line holds a whole row and tools like grep and cut work."""
    cells = [[str(c) for c in frame.columns]] + [["" if pd.isna(v) else str(v) for v in row]
                                                 for row in frame.itertuples(index=False)]
    widths = [max(len(r[i]) for r in cells) for i in range(len(frame.columns))]
    lines = ([title] if title else []) + ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in cells]
    click.echo("\n".join(lines))


class _Cli(click.Group):
    def invoke(self, ctx):
        """A reader that stops early (`tracker export --output - | head`) closes the pipe: a normal end, so exit 0
        quietly. Standard output is pointed at /dev/null so the interpreter's last flush does not fail again."""
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(0)


def parse_age(text: str) -> timedelta:
    m = re.fullmatch(r"(\d+)\s*([dhm])", text.strip())
    if not m:
        raise click.BadParameter(f"{text!r} is not an age; use a number and d, h or m, e.g. 7d, 12h, 30m")
    n, unit = int(m.group(1)), m.group(2)
    return {"d": timedelta(days=n), "h": timedelta(hours=n), "m": timedelta(minutes=n)}[unit]


def _engine():
    from tracker.store import get_engine

    return get_engine()


@click.group(cls=_Cli, help="The Wider Determinants Tracker: where health in each English place depends on departments outside DHSC.")
@click.version_option(package_name="wider-determinants-tracker")
def cli() -> None:
    pass


@cli.command(help="Create or upgrade the database and write departments, the indicator catalog and geography. Safe to run twice.")
def init() -> None:
    from tracker.store import initialise

    engine = _engine()
    counts = initialise(engine)
    for name, n in counts.items():
        click.echo(f"{name}: {n:,}")
    click.echo(f"database ready: {engine.url.render_as_string(hide_password=True)}")


@cli.command(help="init, then load the bundled real snapshot if the database has no data yet (no network needed).")
def prepare() -> None:
    from tracker.store import prepare as prepare_db

    summaries = prepare_db(_engine(), progress=lambda s, m: click.echo(f"  {s}: {m}", err=True), second_process=True)
    if not summaries:
        click.echo("every source is already loaded (use `tracker refresh` to update them)")
    else:
        _print_summaries(summaries, "table")
    sys.exit(1 if any(s.status == "failed" for s in summaries) else 0)


@cli.command(help="List the Whitehall ministerial departments (DHSC flagged), or look one up by any current or historical name.")
@click.option("--lookup", "name", metavar="NAME", help="A current or historical name, abbreviation or GOV.UK slug, e.g. DLUHC.")
@click.option("--function", metavar="TEXT", help="With --lookup: for a department split by function, which function (e.g. 'fuel poverty').")
@click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
def departments(name: str | None, function: str | None, fmt: str) -> None:
    if name:
        matches = dept_mod.lookup(name, function)
        if not matches:
            raise click.UsageError(str(_unknown_department(name)))
        frame = pd.DataFrame(
            [
                {"matched": m.matched, "current_department": m.department.name, "abbreviation": m.department.abbreviation,
                 "slug": m.department.slug, "name_used_until": m.used_until, "functions": m.functions, "summary": m.describe()}
                for m in matches
            ]
        )
        emit(frame, fmt, "Department lookup")
        return
    frame = pd.DataFrame(
        [{"abbreviation": d.abbreviation, "name": d.name, "slug": d.slug, "dhsc": "DHSC" if d.is_dhsc else "", "scope": d.scope or ""}
         for d in dept_mod.all_departments()]
    )
    emit(frame, fmt, "Ministerial departments")


def _unknown_department(name: str) -> ValueError:
    try:
        dept_mod.resolve(name)
    except ValueError as exc:
        return exc
    return ValueError(name)


def _resolve_department(name: str) -> str:
    try:
        return dept_mod.resolve(name).slug
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc


@cli.command(help="List the indicator catalog: department (policy owner), domain, producer, source and rationale.")
@click.option("--department", metavar="DEPT", help="Slug, abbreviation or any historical name (e.g. DLUHC).")
@click.option("--domain", type=click.Choice(catalog_mod.DOMAINS), metavar="DOMAIN", help="One of: " + ", ".join(catalog_mod.DOMAINS))
@click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
def indicators(department: str | None, domain: str | None, fmt: str) -> None:
    specs = catalog_mod.load_catalog()
    if department:
        slug = _resolve_department(department)
        specs = [s for s in specs if s.department == slug or slug in s.secondary_departments]
    if domain:
        specs = [s for s in specs if s.domain == domain]
    frame = pd.DataFrame(
        [{"id": s.id, "title": s.title, "domain": s.domain, "department": dept_mod.get(s.department).abbreviation,
          "secondary": ", ".join(dept_mod.get(d).abbreviation for d in s.secondary_departments), "producer": s.producer,
          "source": s.source, "source_id": s.source_id, "unit": s.unit, "polarity": s.polarity, "rationale": s.rationale,
          "ci_method": s.ci_method, "ci_reason": s.ci_reason}
         for s in specs],
        columns=["id", "title", "domain", "department", "secondary", "producer", "source", "source_id", "unit", "polarity",
                 "rationale", "ci_method", "ci_reason"],
    )
    if fmt == "table":
        frame = frame[["id", "title", "domain", "department", "source", "rationale"]]
    emit(frame, fmt, f"{len(specs)} indicators")


@cli.command(help="List areas: England, regions, ICBs (2024), upper-tier and lower-tier local authorities (2024).")
@click.option("--type", "area_type", type=click.Choice(AREA_TYPES), default="ltla", show_default=True)
@click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
def areas(area_type: str, fmt: str) -> None:
    from tracker.geography import list_areas

    frame = list_areas(_readable_engine(), area_type)
    emit(frame, fmt, f"{len(frame)} areas of type {area_type}")


@cli.command(help="Refresh sources: fetch, validate and load, one transaction per source. Exit 0 if all succeeded, 1 if any failed, 2 on usage errors.")
@click.option("--source", "sources", multiple=True, metavar="NAME", help="Source to refresh (repeatable); default all.")
@click.option("--offline", is_flag=True, help="Read the bundled real snapshot instead of the network.")
@click.option("--if-older-than", "older", metavar="AGE", help="Only sources whose last success is older than AGE (e.g. 7d, 12h).")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True, help="json: one JSON object per line, for schedulers.")
@click.option("--wait", type=float, default=0, metavar="SECONDS", help="If another refresh is running, wait this long for it.")
@click.option("--allow-shrink", is_flag=True, help="Let a source remove more of its stored rows than TRACKER_SHRINK_LIMIT "
              "allows (default 10%), or every row of an area type: only when the publisher really withdrew them.")
def refresh(sources: tuple[str, ...], offline: bool, older: str | None, log_format: str, wait: float,
            allow_shrink: bool) -> None:
    from pipelines.registry import all_sources
    from tracker.refresh import RefreshLocked
    from tracker.refresh import refresh as run_refresh

    known = list(all_sources())
    unknown = [s for s in sources if s not in known]
    if unknown:
        raise click.UsageError(f"unknown source {unknown[0]!r}; valid: {', '.join(known)}")
    age = parse_age(older) if older else None
    engine = _engine()
    run_refresh = functools.partial(run_refresh, allow_shrink=allow_shrink, initialise_first=True,  # lock first
                                    analysis_follows=True)  # _warm_if_changed below
    try:
        summaries = _refresh_with_progress(engine, list(sources) or None, offline, age, log_format, wait, run_refresh)
    except RefreshLocked as exc:
        click.echo(f"tracker: {exc}", err=True)
        sys.exit(3)
    _warm_if_changed(engine, summaries, log_format)
    _print_summaries(summaries, log_format)
    sys.exit(1 if any(s.status == "failed" for s in summaries) else 0)


def _warm_if_changed(engine, summaries, log_format: str) -> None:
    """New data: precompute the analysis now, so the dashboard's next first view does not wait for it."""
    from tracker.store import warm_analysis

    if not any(s.rows_changed for s in summaries):
        return
    if log_format == "json":
        def say(_source, message):
            click.echo(json.dumps({"event": "progress", "source": "analysis", "stage": message}), err=True)
    else:
        def say(_source, message):
            click.echo(f"  analysis: {message}", err=True)
    warm_analysis(engine, say, second_process=True)


def _refresh_with_progress(engine, sources, offline, age, log_format, wait, run_refresh):
    if log_format == "json":
        def progress(source, message):
            click.echo(json.dumps({"event": "progress", "source": source, "stage": message}), err=True)
        return run_refresh(engine, sources, offline=offline, if_older_than=age, progress=progress, wait=wait)
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(SpinnerColumn(), TextColumn("[bold]{task.fields[source]}"), TextColumn("{task.description}"),
                  TimeElapsedColumn(), transient=False, console=_stderr_console()) as bar:
        tasks: dict[str, int] = {}

        def progress(source, message):
            if source not in tasks:
                tasks[source] = bar.add_task(message, source=source, total=None)
            bar.update(tasks[source], description=message)
            if message in ("succeeded", "failed", "skipped"):
                bar.update(tasks[source], total=1, completed=1)

        return run_refresh(engine, sources, offline=offline, if_older_than=age, progress=progress, wait=wait)


def _stderr_console():
    from rich.console import Console

    return Console(stderr=True)


def _print_summaries(summaries, log_format: str) -> None:
    rows = [
        {"source": s.source, "status": s.status, "read": s.rows_read, "loaded": s.rows_loaded, "changed": s.rows_changed,
         "removed": s.rows_removed, "kept": s.rows_kept, "rejected": s.rows_rejected, "unmapped": s.rows_unmapped, "seconds": round(s.seconds, 1), "error": s.error or "", "note": s.note or ""}
        for s in summaries
    ]
    if log_format == "json":
        for r in rows:
            click.echo(json.dumps({"event": "result", **r}))
        return
    emit(pd.DataFrame(rows).drop(columns=["error", "note"]), "table", "Refresh summary")
    for r in rows:  # messages in full below the table, where they do not wrap into a narrow column
        if r["error"]:
            click.echo(f"{r['source']} {r['status']}: {r['error']}")
        if r["note"]:
            click.echo(f"{r['source']}: {r['note']}")


@cli.command(help="Export an evidence pack: every indicator's figures for the areas chosen (latest period unless "
                  "--all-periods), with England and ICB values, comparisons, trends and associations, as CSV (with a "
                  "data dictionary beside it) or Excel. An ICB brings its local authorities and the counties of its "
                  "two-tier districts. Columns: docs/export-columns.md.")
@click.option("--area", "area_codes", multiple=True, required=True, metavar="CODE",
              help="E92 England, E12 region, E54 ICB, E10 county or E06-E09 local authority code (repeatable; \"all\" for every area); see `tracker areas`.")
@click.option("--department", "department_names", multiple=True, metavar="DEPT",
              help="Only indicators this department leads or shares (repeatable): slug, abbreviation or any historical name, e.g. DLUHC.")
@click.option("--domain", "domains", multiple=True, metavar="DOMAIN",
              help="Only indicators in this domain (repeatable): " + ", ".join(catalog_mod.DOMAINS))
@click.option("--all-periods", is_flag=True, help="Every period, not only each indicator's latest.")
@click.option("--format", "fmt", type=click.Choice(["csv", "xlsx"]), help="Default: xlsx when --output ends in .xlsx, else csv.")
@click.option("--output", metavar="PATH", help="File or folder to write, or - for standard output. Default: pack-<code>-<date>.<format> in the current "
                   "directory (in the data folder's packs/ when run inside the tracker's own folder).")
def export(area_codes: tuple[str, ...], department_names: tuple[str, ...], domains: tuple[str, ...], all_periods: bool,
           fmt: str | None, output: str | None) -> None:
    from datetime import date
    from pathlib import Path

    from tracker.exports import ExportError, default_filename, dictionary_bytes, dictionary_path, write_export

    fmt = fmt or ("xlsx" if (output or "").lower().endswith(".xlsx") else "csv")
    choice = dict(area_codes=area_codes, departments=department_names, domains=domains, all_periods=all_periods, fmt=fmt)
    target = Path(output) if output else default_pack_folder() / default_filename(area_codes, fmt, date.today())
    if target.is_dir():
        target = target / default_filename(area_codes, fmt, date.today())
    engine = _readable_engine()
    try:
        if output == "-":
            write_export(engine, sys.stdout.buffer, **choice)
            sys.stdout.buffer.flush()
            return
        part = target.with_name(target.name + ".part")  # a failed export leaves no half-written file
        try:
            with part.open("wb") as fh:
                result = write_export(engine, fh, **choice)
            part.replace(target)
        finally:
            part.unlink(missing_ok=True)
        if fmt == "csv":
            dictionary_path(target).write_bytes(dictionary_bytes())
    except ExportError as exc:
        raise click.UsageError(str(exc)) from exc
    except BrokenPipeError:
        raise  # the reader of standard output stopped early: a normal end (_Cli.invoke)
    except OSError as exc:
        raise click.ClickException(f"cannot write {target}: {exc.strerror}") from exc
    where = dictionary_path(target) if fmt == "csv" else "the Dictionary and About sheets"
    areas_text = f"{result.areas} area" + ("" if result.areas == 1 else "s")
    click.echo(f"wrote {result.rows:,} rows for {areas_text} to {target}; column meanings in {where}")


def default_pack_folder():
    """Where a pack goes with no --output: the current directory, where the user runs `tracker export` on
    purpose; but inside the tracker's own folder (e.g. after `make run`), the data folder's packs/ (var/packs/ by
    default), so packs never land among the source files as untracked files."""
    from pathlib import Path

    from tracker.config import PROJECT_ROOT, paths

    here = Path.cwd().resolve()
    if here == PROJECT_ROOT or PROJECT_ROOT in here.parents:
        folder = paths().data_dir / "packs"
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    return Path(".")


@cli.command(help="Parse, validate and load again the archived raw payloads of an earlier run (e.g. after a parser fix), as a new run. Exit 0 on success, 1 on failure.")
@click.argument("run_id", type=int)
@click.option("--wait", type=float, default=0, metavar="SECONDS", help="If a refresh is running, wait this long for it.")
@click.option("--allow-shrink", is_flag=True, help="Let the replay remove more stored rows than TRACKER_SHRINK_LIMIT allows.")
def replay(run_id: int, wait: float, allow_shrink: bool) -> None:
    from pipelines.base import SourceError
    from tracker.refresh import RefreshLocked
    from tracker.refresh import replay as replay_run

    engine = _engine()
    try:
        summary = replay_run(engine, run_id, wait=wait, allow_shrink=allow_shrink, initialise_first=True,
                             analysis_follows=True)
    except SourceError as exc:
        raise click.UsageError(str(exc)) from exc
    except RefreshLocked as exc:
        click.echo(f"tracker: {exc}", err=True)
        sys.exit(3)
    _warm_if_changed(engine, [summary], "text")
    _print_summaries([summary], "text")
    sys.exit(0 if summary.status == "succeeded" else 1)


@cli.command(help="Per source: the latest period held, when the publisher released it, whether a newer release is "
             "overdue (period end + release cadence + grace), and the last run.")
@click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
def status(fmt: str) -> None:
    from tracker.status import source_status

    engine = _readable_engine()
    frame = source_status(engine)
    if fmt == "table":  # what fits a terminal; csv and json carry every column
        frame = frame[["source", "latest_period", "released", "cadence", "freshness", "last_checked", "last_status",
                       "rows_loaded"]]
    emit(frame, fmt, "Sources (freshness by the data: docs/catalog.md#releases)")


def _readable_engine():
    """The database for a read command, which never writes: it must exist and be at this version's schema."""
    from db.engine import has_schema, is_current

    engine = _engine()
    where = engine.url.render_as_string(hide_password=True)
    if not has_schema(engine):
        raise click.ClickException(f"the database at {where} is not set up yet; run `tracker prepare` first")
    if not is_current(engine):
        raise click.ClickException(f"the database at {where} is from an older version of the tracker; "
                                   "run `tracker init` to upgrade it")
    return engine


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        cli.main(args=argv, prog_name="tracker", standalone_mode=False)
    except click.UsageError as exc:
        if exc.__class__.__name__ == "NoArgsIsHelpError":  # plain `tracker`: show the help
            click.echo(exc.format_message())
            sys.exit(0)
        click.echo(f"tracker: error: {exc.format_message()}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("tracker: aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        click.echo(f"tracker: error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except Exception as exc:  # noqa: BLE001 - the database or the disk: one line saying what to do
        message = _environment_problem(exc)
        if message is None:
            raise
        click.echo(f"tracker: error: {message}", err=True)
        sys.exit(1)


def _environment_problem(exc: BaseException) -> str | None:
    """A one-line explanation for failures of the machine rather than the tracker, else None."""
    import errno

    from sqlalchemy.exc import OperationalError

    from tracker.config import paths
    from tracker.refresh import nearly_full as _nearly_full

    text = str(getattr(exc, "orig", None) or exc)
    folder = paths().data_dir
    if getattr(exc, "errno", None) == errno.ENOSPC or "disk is full" in text or (
            "disk I/O error" in text and _nearly_full(folder)):  # SQLite's WAL reports a full disk so
        return f"the disk is full (writing in {folder}); free some space and try again"
    if isinstance(exc, OperationalError) and ("readonly" in text or "unable to open database file" in text):
        return (f"cannot write in {folder}: the database says {text!r}: a read-only or someone else's folder. Read-only "
                "commands (status, areas, export) and the dashboard work there; run init, prepare and refresh as "
                "the folder's owner")
    if isinstance(exc, OperationalError):
        return f"the database could not be used: {text}"
    if isinstance(exc, OSError) and exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return (f"cannot write in {exc.filename or folder} ({exc.strerror}): a read-only or someone else's folder. "
                "Read-only commands (status, areas, export) and the dashboard work there; run init, prepare and "
                "refresh as the folder's owner")
    return None


if __name__ == "__main__":
    main()

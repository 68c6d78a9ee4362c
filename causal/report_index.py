"""The index of every report: ``reports/index.html`` and the same table for the terminal.

One row per report folder holding a ``results.json``: title, design, headline effect and net
value with intervals, the worst check status, the data fingerprint, the run date and a link.
The page sorts and filters with an inline script (no server, no network) and is written
atomically, so a failed rebuild leaves the previous index in place.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import uuid
from dataclasses import dataclass
from html import escape
from pathlib import Path

from causal.errors import CausalError, ReportError
from causal.narrative import money
from causal.results import load_results
from causal.value import line

INDEX_NAME = "index.html"


@dataclass(frozen=True)
class IndexRow:
    """What the index shows of one report (``problem`` set when it could not be read)."""

    name: str
    title: str = ""
    design: str = ""
    effect: str = ""
    effect_value: float = math.nan
    net_value: str = ""
    net_value_value: float = math.nan
    status: str = "n/a"
    fingerprint: str = ""
    run_at: str = ""
    problem: str = ""

    @property
    def link(self) -> str:
        return f"{self.name}/{INDEX_NAME}"


def collect(reports_dir: str | Path) -> list[IndexRow]:
    """One row per sub-folder of ``reports_dir`` with a ``results.json``, newest run first.

    A folder whose results cannot be read gets a row that says why instead of stopping the
    index (the other reports stay reachable).

    Examples
    --------
    >>> import tempfile
    >>> collect(tempfile.mkdtemp())
    []
    """
    rows = []
    for results_path in sorted(Path(reports_dir).glob("*/results.json")):
        name = results_path.parent.name
        try:
            rows.append(_row(name, results_path))
        except (CausalError, ValueError, KeyError, TypeError) as exc:
            rows.append(IndexRow(name=name, problem=str(exc).splitlines()[0][:200]))
    return sorted(rows, key=lambda r: r.run_at, reverse=True)


def write_index(reports_dir: str | Path) -> Path:
    """Rebuild ``reports_dir/index.html`` atomically and return its path.

    Raises :class:`ReportError` (the previous index kept) when the folder cannot be written.

    Examples
    --------
    >>> import tempfile
    >>> write_index(tempfile.mkdtemp()).name
    'index.html'
    """
    folder = Path(reports_dir)
    target = folder / INDEX_NAME
    staging = folder / f".{INDEX_NAME}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        # Runs finishing together must not each write an index that misses the other's report.
        # (The lock is on the folder itself, so no lock file is left behind.)
        handle = os.open(folder, os.O_RDONLY)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX)
            staging.write_text(index_html(collect(folder)), encoding="utf-8")
            os.replace(staging, target)
        finally:
            os.close(handle)
    except OSError as exc:
        staging.unlink(missing_ok=True)
        raise ReportError(
            f"cannot write the report index {target}: {exc.strerror or exc}; check the folder's "
            "permissions (the previous index, if any, is unchanged)"
        ) from None
    return target


def terminal_table(rows: list[IndexRow]) -> str:
    """The index as aligned text columns for ``causal list``."""
    header = ("name", "design", "headline", "net value", "checks", "run")
    body = [
        (r.name, r.design, r.effect or r.problem, r.net_value or "–", r.status, r.run_at[:16])
        for r in rows
    ]
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in [header, *body]
    ]
    return "\n".join(text.rstrip() for text in lines)


def index_html(rows: list[IndexRow]) -> str:
    """The index page: a sortable, filterable table; every string escaped."""
    body = "".join(_row_html(r) for r in rows) or (
        '<tr><td colspan="8">No reports yet: run <code>causal run experiments/NAME.yaml</code>.'
        "</td></tr>"
    )
    head = "".join(
        f'<th data-col="{i}" data-kind="{kind}" tabindex="0" role="button" '
        f'aria-label="Sort by {escape(label)}">{escape(label)}</th>'
        for i, (label, kind) in enumerate(_COLUMNS)
    )
    return _PAGE.format(count=len(rows), head=head, body=body)


# --- rows ----------------------------------------------------------------------------------------


def _row(name: str, results_path: Path) -> IndexRow:
    res = load_results(results_path)
    head = res.headline()
    level = f"{head.conf_level:.0%}"
    # An uplift run's headline is how well its policy learner ranks (a Qini coefficient), not an
    # effect on the outcome: say so, or 0.09 would read as a 0.09 change in the outcome.
    what = head.outcome
    if res.experiment.get("design") == "uplift":
        what = f"{head.estimand} for {head.outcome}"
    if res.experiment.get("design") == "clv":
        what = head.estimand
    effect = (
        f"{what}: {head.estimate:,.4g} ({level} CI {head.conf_low:,.4g} to "
        f"{head.conf_high:,.4g}) · {head.estimator}"
    )
    net_text, net_value = "", math.nan
    if res.value is not None:
        currency = res.value["currency"]
        net = line(res.value, "net_value")
        net_value = float(net["estimate"])
        net_text = (
            f"{money(net['estimate'], currency)} ({money(net['conf_low'], currency)} to "
            f"{money(net['conf_high'], currency)})"
        )
    prov = res.provenance
    return IndexRow(
        name=name,
        title=str(res.experiment.get("title", name)),
        design=str(res.experiment.get("design", "")),
        effect=effect,
        effect_value=float(head.estimate),
        net_value=net_text,
        net_value_value=net_value,
        status=res.worst_status,
        fingerprint=str(prov.get("data_fingerprint", ""))[:12],
        run_at=str(prov.get("created_at", "")),
    )


_COLUMNS = (
    ("Experiment", "text"),
    ("Design", "text"),
    ("Headline effect", "number"),
    ("Net value", "number"),
    ("Checks", "text"),
    ("Data", "text"),
    ("Run", "text"),
    ("Report", "text"),
)


def _row_html(r: IndexRow) -> str:
    if r.problem:
        return (
            f"<tr><td>{escape(r.name)}</td><td colspan='6' class='problem'>cannot read "
            f"results.json: {escape(r.problem)}</td><td></td></tr>"
        )
    status = escape(r.status)
    cells = [
        f'<td><a href="{escape(r.link, quote=True)}"><strong>{escape(r.title)}</strong></a><br>'
        f"<span class='small'>{escape(r.name)}</span></td>",
        f"<td>{escape(r.design)}</td>",
        f"<td data-sort='{_sort_key(r.effect_value)}'>{escape(r.effect)}</td>",
        f"<td data-sort='{_sort_key(r.net_value_value)}'>{escape(r.net_value or '–')}</td>",
        f"<td><span class='badge {status.replace('/', '')}'>{status}</span></td>",
        f"<td><code>{escape(r.fingerprint)}</code></td>",
        f"<td>{escape(r.run_at.replace('T', ' ')[:16])}</td>",
        f'<td><a href="{escape(r.link, quote=True)}">open</a></td>',
    ]
    return "<tr>" + "".join(cells) + "</tr>"


def _sort_key(value: float) -> str:
    return json.dumps(value) if math.isfinite(value) else ""


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Experiment reports</title>
<style>
body{{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:1.2em;color:#222}}
h1{{font-size:1.5em;margin:.2em 0}} .small{{color:#555;font-size:.85em}}
input{{font-size:1em;padding:.3em .5em;margin:.6em 0;width:min(28em,100%);box-sizing:border-box}}
.scroll{{overflow-x:auto;max-width:100%}} table{{border-collapse:collapse;width:100%}}
th,td{{padding:.35em .6em;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}}
th{{cursor:pointer;white-space:nowrap;background:#f5f5f5}} th:after{{content:" \\2195";color:#999}}
.badge{{display:inline-block;padding:.05em .5em;border-radius:.6em;color:#fff;font-weight:600}}
.pass{{background:#2e7d32}} .warn{{background:#b26a00}} .fail{{background:#b03a2e}}
.na{{background:#777}} .problem{{color:#b03a2e}}
@media (max-width:600px){{body{{margin:.5em}} th,td{{padding:.25em .35em;font-size:.85em}}}}
@media print{{input{{display:none}} th:after{{content:""}}}}
</style></head><body>
<h1>Experiment reports</h1>
<p class="small">{count} report(s). Click a column to sort; type to filter.</p>
<input id="filter" type="search" placeholder="Filter by name, design, status…"
 aria-label="Filter reports">
<div class="scroll"><table id="reports"><thead><tr>{head}</tr></thead>
<tbody>{body}</tbody></table></div>
<script>
(function () {{
  var table = document.getElementById("reports");
  var body = table.tBodies[0];
  document.getElementById("filter").addEventListener("input", function (e) {{
    var q = e.target.value.toLowerCase();
    Array.prototype.forEach.call(body.rows, function (row) {{
      row.style.display = row.textContent.toLowerCase().indexOf(q) >= 0 ? "" : "none";
    }});
  }});
  Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {{
    var asc = true;
    function sort() {{
      var col = +th.dataset.col, numeric = th.dataset.kind === "number";
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {{
        var x = a.cells[col], y = b.cells[col];
        if (!x || !y) return 0;
        var u = numeric ? parseFloat(x.dataset.sort) : x.textContent;
        var v = numeric ? parseFloat(y.dataset.sort) : y.textContent;
        if (numeric) {{ u = isNaN(u) ? -Infinity : u; v = isNaN(v) ? -Infinity : v; }}
        return (u < v ? -1 : u > v ? 1 : 0) * (asc ? 1 : -1);
      }});
      rows.forEach(function (r) {{ body.appendChild(r); }});
      asc = !asc;
    }}
    th.addEventListener("click", sort);
    th.addEventListener("keydown", function (e) {{ if (e.key === "Enter") sort(); }});
  }});
}})();
</script>
</body></html>
"""

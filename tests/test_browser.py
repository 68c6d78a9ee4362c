"""The HTML reports as a reader sees them: opened in Debian's Chromium through Playwright.

Five bundled experiments (A/B, synthetic control, DiD, observational, uplift) are rendered once into
one folder; each report is opened from the folder's index and directly, and must load without
errors or failed requests, show every plot, carry the headline number of results.json and fit a
390 px phone screen. Screenshots land in each test's tmp folder (paths printed; run with ``-s``
to see them).

Playwright's own browser download is not used: install Chromium with ``make browser`` or
``apt-get install chromium``; without it this module is skipped.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from conftest import Project
    from playwright.sync_api import Browser, Page

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    pytest.skip(
        "Chromium not found: browser tests need Debian's Chromium "
        "(run `make browser` or `apt-get install chromium`)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright missing: pip install -e '.[test]'"
)

pytestmark = pytest.mark.browser

REPO_ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 300
REPORTS = {
    "extended_warranty_pilot": "experiments/extended_warranty_pilot.yaml",  # A/B with value
    "prop99_smoking": "experiments/prop99_smoking.yaml",  # synthetic control
    "mpdta_minimum_wage": "experiments/mpdta_minimum_wage.yaml",  # staggered DiD
    "lalonde_nsw_cps": "experiments/lalonde_nsw_cps.yaml",  # observational
    "remote_support_targeting": "experiments/remote_support_targeting.yaml",  # uplift
    "extended_warranty_long_term": "experiments/extended_warranty_long_term.yaml",  # long term
    "cdnow_clv": "experiments/cdnow_clv.yaml",  # customer lifetime value
}
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
A4 = {"width": 794, "height": 1123}  # an A4 page at 96 CSS px per inch
HEADLINE = "#headline-effect, #headline-net-value, #headline-policy-value"
XSS_TITLE = "<script>alert(1)</script>"
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:")

# Elements sticking out to the right of the viewport: names the culprit when a page scrolls
# sideways (elements inside a scrolling container do not widen the page and are not listed).
OVERFLOWING_JS = """() => {
  const w = window.innerWidth, seen = [];
  for (const el of document.body.querySelectorAll('*')) {
    const r = el.getBoundingClientRect();
    if (r.right > w + 1 && r.width > 0) {
      const cls = (el.getAttribute('class') || '').trim().split(/\\s+/).slice(0, 2).join('.');
      const tag = el.tagName.toLowerCase() + (cls ? '.' + cls : '');
      seen.push(`${tag} (right ${Math.round(r.right)})`);
    }
  }
  return seen.slice(0, 8);
}"""

# Words inside table cells that the browser split across lines ("Statu|s", "-0.0027|5"): a word
# is a run of characters without spaces, hyphens or slashes, where breaking is normal.
SPLIT_WORDS_JS = """() => {
  const split = [];
  for (const cell of document.querySelectorAll('td, th')) {
    const walk = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
    for (let node = walk.nextNode(); node; node = walk.nextNode()) {
      for (const m of node.data.matchAll(/[^\\s\\-\u2013\\/]+/g)) {
        const range = document.createRange();
        range.setStart(node, m.index);
        range.setEnd(node, m.index + m[0].length);
        const lines = new Set(Array.from(range.getClientRects(), r => Math.round(r.top)));
        if (lines.size > 1) split.push(m[0]);
      }
    }
  }
  return split;
}"""


# --- rendering: once per module, in parallel -------------------------------------------------


@dataclass
class Rendered:
    out: Path
    procs: dict[str, subprocess.CompletedProcess[str]]

    def report(self, name: str) -> tuple[Path, dict[str, Any]]:
        """``(index.html, results)`` of report ``name``; fails with the command's stderr."""
        proc = self.procs[name]
        assert proc.returncode == 0, f"causal run {REPORTS.get(name, name)} failed:\n{proc.stderr}"
        folder = self.out / name
        results = json.loads((folder / "results.json").read_text(encoding="utf-8"))
        return folder / "index.html", results


def causal_many(*commands: tuple[list[str | Path], Path]) -> list[subprocess.CompletedProcess[str]]:
    """Run several ``causal`` commands at once (they are independent) and wait for all."""
    procs = [
        (
            cmd,
            subprocess.Popen(
                [sys.executable, "-m", "causal.cli", *map(str, cmd)],
                cwd=cwd,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            ),
        )
        for cmd, cwd in commands
    ]
    done = []
    for cmd, proc in procs:
        out, err = proc.communicate(timeout=TIMEOUT)
        done.append(subprocess.CompletedProcess(cmd, proc.returncode, out, err))
    return done


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    out = tmp_path_factory.mktemp("reports")
    procs = causal_many(*((["run", spec, "--out", out], REPO_ROOT) for spec in REPORTS.values()))
    return Rendered(out, dict(zip(REPORTS, procs, strict=True)))


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


# --- a page that records everything that goes wrong ------------------------------------------


@dataclass
class Watched:
    page: Page
    problems: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def no_problems(self, where: str) -> None:
        assert not self.problems, f"{where}: " + "\n  ".join(
            ["errors while loading:", *self.problems]
        )


@pytest.fixture
def watched(browser: Browser) -> Iterator[Watched]:
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    seen = Watched(page)

    def on_console(msg: Any) -> None:
        if msg.type == "error":
            seen.problems.append(f"console error: {msg.text} ({msg.location.get('url', '')})")

    def on_request(req: Any) -> None:
        # A report must be self-contained: on a machine with network a CDN script would load
        # fine and never show up as a failed request, so any request off the page is a problem.
        if not req.url.startswith(LOCAL_SCHEMES):
            seen.problems.append(f"external request: {req.url}")

    def on_dialog(dialog: Any) -> None:
        seen.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    page.on("console", on_console)
    page.on("pageerror", lambda exc: seen.problems.append(f"page error: {exc}"))
    page.on(
        "requestfailed",
        lambda req: seen.problems.append(f"request failed: {req.url} ({req.failure})"),
    )
    page.on("request", on_request)
    page.on("dialog", on_dialog)
    yield seen
    context.close()


def url(path: Path) -> str:
    return path.resolve().as_uri()


def shot(page: Page, path: Path, label: str) -> None:
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot ({label}): {path}")


def assert_no_sideways_scroll(page: Page, where: str) -> None:
    """At the current viewport the page must not be wider than the window."""
    width, inner = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    culprits = [] if width <= inner + 1 else page.evaluate(OVERFLOWING_JS)
    assert width <= inner + 1, (
        f"{where} scrolls sideways at {inner} px: page is {width} px wide; "
        f"sticking out: {', '.join(culprits) or '?'}"
    )


def expected_headline(results: dict[str, Any]) -> tuple[str, float]:
    """``(element id, value)`` the report's headline must show: the net value when the report
    prices the effect (of the primary estimate), else the primary estimate itself. An uplift
    report's primary estimate is a Qini coefficient: unpriced, it shows the targeting policy's
    gain per customer instead."""
    primary = results["primary"]
    head = next(
        r
        for r in results["results"]
        if r["outcome"] == primary["outcome"] and r["estimator"] == primary["estimator"]
    )
    value = results.get("value")
    if not value and results["experiment"]["design"] == "uplift":
        gain = head["details"]["policy"]["per_customer"]["policy"]["estimate"]
        return "headline-policy-value", float(gain)
    if not value:
        return "headline-effect", float(head["estimate"])
    lines = {line["name"]: line for line in value["lines"]}
    if (
        value.get("revenue_outcome") == primary["outcome"]
        and value["estimator"] == primary["estimator"]
    ):
        assert lines["incremental_revenue_per_unit"]["estimate"] == pytest.approx(head["estimate"])
    return "headline-net-value", float(lines["net_value"]["estimate"])


def check_report(seen: Watched, results: dict[str, Any], name: str) -> None:
    """The loaded report: no errors, every plot drawn and described, the right headline."""
    page = seen.page
    page.wait_for_load_state("load")
    seen.no_problems(name)

    images = page.evaluate(
        "() => Array.from(document.images, i => ({src: i.src.slice(0, 60), "
        "width: i.naturalWidth, alt: (i.getAttribute('alt') || '').trim()}))"
    )
    assert images, f"{name}: no plots"
    broken = [img["src"] for img in images if img["width"] <= 0]
    assert not broken, f"{name}: images that did not load: {broken}"
    no_alt = [img["src"] for img in images if not img["alt"]]
    assert not no_alt, f"{name}: images without alt text: {no_alt}"

    element_id, value = expected_headline(results)
    headline = page.locator(HEADLINE)
    assert headline.count() == 1, (
        f"{name}: expected one headline ({HEADLINE}), found {headline.count()}"
    )
    assert headline.get_attribute("id") == element_id
    assert headline.is_visible(), f"{name}: headline not visible"
    shown = headline.get_attribute("data-value")
    assert shown is not None, f"{name}: headline has no data-value"
    assert float(shown) == value, f"{name}: headline shows {shown}, results.json has {value!r}"


# --- the index of reports --------------------------------------------------------------------


def open_index(rendered: Rendered, seen: Watched) -> Path:
    index = rendered.out / "index.html"
    assert index.is_file(), (
        f"{index} missing: every `causal run` should (re)write OUT/index.html, an index of all "
        "reports in OUT with one row per experiment linking to NAME/index.html"
    )
    seen.page.goto(url(index))
    return index


def test_index_links_every_report(rendered: Rendered, watched: Watched) -> None:
    for name in REPORTS:
        rendered.report(name)
    open_index(rendered, watched)
    watched.no_problems("index")
    page = watched.page
    for name in REPORTS:
        link = page.locator(f'a[href="{name}/index.html"]')
        assert link.count() >= 1, f'index has no <a href="{name}/index.html">'
        rows = page.locator("tr").filter(has=link)
        assert rows.count() == 1, f"index should have one row for {name}, has {rows.count()}"
    hrefs = page.eval_on_selector_all("a[href]", "els => els.map(a => a.getAttribute('href'))")
    local = [h for h in hrefs if ":" not in h and not h.startswith("#")]
    dead = [h for h in local if not (rendered.out / h).is_file()]
    assert not dead, f"index links to missing files: {dead}"


def test_index_fits_a_phone(rendered: Rendered, watched: Watched, tmp_path: Path) -> None:
    rendered.report(next(iter(REPORTS)))
    watched.page.set_viewport_size(PHONE)
    open_index(rendered, watched)
    shot(watched.page, tmp_path / "index-390.png", "index, 390 px")
    assert_no_sideways_scroll(watched.page, "index")


@pytest.mark.parametrize("name", list(REPORTS))
def test_report_opened_from_the_index(rendered: Rendered, watched: Watched, name: str) -> None:
    html, results = rendered.report(name)
    open_index(rendered, watched)
    page = watched.page
    page.locator(f'a[href="{name}/index.html"]').first.click()
    page.wait_for_url(url(html), timeout=10_000)
    check_report(watched, results, name)


# --- each report opened directly -------------------------------------------------------------


@pytest.mark.parametrize("name", list(REPORTS))
def test_report_opened_directly(
    rendered: Rendered, watched: Watched, name: str, tmp_path: Path
) -> None:
    html, results = rendered.report(name)
    page = watched.page
    page.goto(url(html))
    check_report(watched, results, name)
    shot(page, tmp_path / f"{name}-1280.png", f"{name}, 1280 px")

    page.set_viewport_size(PHONE)
    shot(page, tmp_path / f"{name}-390.png", f"{name}, 390 px")
    assert_no_sideways_scroll(page, name)
    watched.no_problems(name)


@pytest.mark.parametrize("name", list(REPORTS))
def test_table_cells_keep_words_whole(rendered: Rendered, watched: Watched, name: str) -> None:
    """Narrow columns must not break words letter by letter; a wide table scrolls in its box."""
    html, _ = rendered.report(name)
    page = watched.page
    page.goto(url(html))
    for viewport in (DESKTOP, PHONE):
        page.set_viewport_size(viewport)
        split = page.evaluate(SPLIT_WORDS_JS)
        assert not split, (
            f"{name} at {viewport['width']} px splits {len(split)} word(s) in table cells across "
            f"lines, e.g. {sorted(set(split))[:8]}"
        )


def test_uplift_report_has_its_sections(rendered: Rendered, watched: Watched) -> None:
    """The targeting report: every section, five described plots, the scored file beside it."""
    html, results = rendered.report("remote_support_targeting")
    page = watched.page
    page.goto(url(html))
    check_report(watched, results, "remote_support_targeting")
    headings = page.eval_on_selector_all("h2", "els => els.map(h => h.textContent.trim())")
    for section in (
        "Design checks",
        "What changed since the last run",
        "Learners compared on held-out customers",
        "Uplift by decile for the policy learner",
        "The policy in money",
        "Who is targeted",
        "The scored file",
        "Methods and assumptions",
        "Reproduce",
    ):
        assert any(h.startswith(section) for h in headings), f"no section {section!r}"
    alts = page.eval_on_selector_all("img", "els => els.map(i => i.alt)")
    assert len(alts) == 5, alts
    assert any("Qini" in alt for alt in alts) and any("cut-off" in alt for alt in alts)
    body = page.locator("body").inner_text()
    assert "Contacting everyone" in body and "Targeting minus contacting everyone" in body
    for learner in results["experiment"]["design_settings"]["learners"]:
        assert page.locator(f"code:text-is('{learner}')").count() >= 1, learner
    assert (html.parent / "uplift_scores.parquet").is_file()


def test_ab_report_prints(rendered: Rendered, watched: Watched, tmp_path: Path) -> None:
    html, results = rendered.report("extended_warranty_pilot")
    page = watched.page
    page.set_viewport_size(A4)
    page.emulate_media(media="print")
    page.goto(url(html))
    check_report(watched, results, "extended_warranty_pilot")
    shot(page, tmp_path / "extended_warranty_pilot-print.png", "A/B report, print media, A4 width")


# --- escaping --------------------------------------------------------------------------------


def test_title_with_markup_is_shown_as_text(tiny_experiment: Project, watched: Watched) -> None:
    tiny_experiment.spec["title"] = XSS_TITLE
    tiny_experiment.write_spec()
    out = tiny_experiment.root / "out"
    (proc,) = causal_many((["run", "spec.yaml", "--out", out], tiny_experiment.root))
    assert proc.returncode == 0, proc.stderr
    page = watched.page
    page.goto(url(out / tiny_experiment.name / "index.html"))
    page.wait_for_load_state("load")
    assert not watched.dialogs, f"the title ran as a script: {watched.dialogs}"
    watched.no_problems("report titled with markup")
    assert XSS_TITLE in page.locator("body").inner_text()

    index = out / "index.html"
    if index.is_file():  # the index of reports shows the title too
        page.goto(url(index))
        assert not watched.dialogs, f"the title ran as a script in the index: {watched.dialogs}"
        watched.no_problems("index of a report titled with markup")
        assert XSS_TITLE in page.locator("body").inner_text()

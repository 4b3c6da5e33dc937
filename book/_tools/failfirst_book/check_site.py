"""`make test-site`: check the built book in a real browser, with the network off.

Usage: python -m failfirst_book.check_site [_build/html]

Serves the site on 127.0.0.1 (a free port, in this process) and opens every
page in headless Chromium (Debian's /usr/bin/chromium, driven by Playwright;
never `playwright install`). Every request that is not for 127.0.0.1 is
aborted and counted as a failure. For each page it checks:

- the page loads (HTTP 200) with no console error and no uncaught exception;
- no request failed or answered >= 400, and none left loopback;
- every <img> loaded (naturalWidth > 0), so every diagram rendered;
- pages that must show a diagram have at least one rendered SVG image;
- every image has alt text;
- nothing runs past the content column, and no table or cell output is cut at
  its right edge behind a scrollbar (source listings may scroll);
- no paragraph starts with a literal code fence or a language name (a code block
  that was rendered as text);
- no raw MyST role or directive syntax in the page's text, and no literal backtick
  outside code (Markdown that was not rendered);
- no word broken inside a table cell (a run of letters and digits split across lines;
  identifiers may break at ``_`` and ``.``);
- no code block wider than its box without a scrollbar, and no shell block (commands a
  reader copies) wider than its box at all;
- no page is taller than :data:`PAGE_HEIGHT_MAX_PX` at the desktop viewport (a chapter
  that long carries listings or traces to fold: show the lines that teach, fold the rest);
- every executed chapter links its notebook, the link serves a valid .ipynb,
  and its Markdown holds no raw MyST either (:mod:`failfirst_book.nbexport`);
- every number on the landing page and the failure-mode index equals the one
  its chapter's evidence summary shows, and that number appears in the
  chapter's own text as well.

Prints one line per failure and ends with "check_site: N passed, M failed".
"""

from __future__ import annotations

import functools
import json
import os
import re
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from failfirst_book import nbexport

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
#: Pages whose diagrams are drawn at build time: (page, minimum number of SVG images).
DIAGRAMS = {"index.html": 1, "02_state_model.html": 1, "04_happy_path.html": 1}
#: Failure-mode chapters show at least a timeline.
FM_PREFIX = "FM_"
PAGE_TIMEOUT_MS = 30_000
#: furo's desktop layout: the content column is about 46em wide.
VIEWPORT = {"width": 1280, "height": 900}
#: Pages Sphinx generates whole (indices, search): the layout checks skip them.
SPHINX_PAGES = {"genindex.html", "py-modindex.html", "search.html"}
#: The tallest a page may be at VIEWPORT (furo's desktop layout, Chromium's fonts). With
#: their long listings and traces folded the chapters measure 8,000 to 11,500 px (FM_008
#: the longest); an unfolded 75-line listing adds about 1,400 px.
PAGE_HEIGHT_MAX_PX = 12_000
#: Reference pages that are long by nature (every module's docstrings), beside SPHINX_PAGES.
TALL_PAGES = {"reference/api.html"}
#: Pages whose generated tables publish chapter numbers.
NUMBER_PAGES = ("index.html", "failure_mode_index.html")


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


def serve(root: Path) -> tuple[ThreadingHTTPServer, str]:
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)  # port 0: any free port
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def pages(root: Path) -> list[str]:
    skip = {"_static", "_sources", "_downloads", "_images", "reports", ".doctrees"}
    return sorted(
        p.relative_to(root).as_posix() for p in root.rglob("*.html")
        if not skip & set(p.relative_to(root).parts)
    )


# Waits for every image (made eager first), then reports each one's state.
_IMAGES_JS = """
async () => {
  const imgs = Array.from(document.images);
  imgs.forEach(i => { i.loading = "eager"; });
  await Promise.all(imgs.map(i => i.complete ? null :
    new Promise(r => { i.addEventListener("load", r); i.addEventListener("error", r); })));
  return imgs.map(i => ({src: i.getAttribute("src"), width: i.naturalWidth,
                         output: !!i.closest(".cell_output")}));
}
"""


# Layout and text checks, run in the page. Returns a list of problems (strings).
_PAGE_JS = r"""
() => {
  const problems = [];
  const main = document.querySelector("article[role=main]") || document.body;
  // furo lets a heading's "¶" link, a signature or a table wrapper reach a few pixels
  // into the margin by design; content that runs past the column runs much further.
  const limit = main.getBoundingClientRect().right + 10;
  const describe = el => {
    const cls = (el.className && typeof el.className === "string")
      ? "." + el.className.trim().split(/\s+/).join(".") : "";
    const text = (el.textContent || "").trim().replace(/\s+/g, " ").slice(0, 60);
    return el.tagName.toLowerCase() + cls + ' "' + text + '"';
  };
  // Source listings (code cells' input, literal includes) may scroll; outputs and tables may not.
  const isSource = el => !!el.closest(".cell_input, div[class*=highlight-]:not(.cell_output *)");
  const scrollers = [];
  for (const el of main.querySelectorAll("*")) {
    const cs = getComputedStyle(el);
    if (cs.display === "none" || cs.visibility === "hidden") continue;
    if (["auto", "scroll", "hidden"].includes(cs.overflowX)) {
      scrollers.push(el);
      if (el.scrollWidth > el.clientWidth + 1 && !isSource(el))
        problems.push("cut at the right edge (" + el.scrollWidth + " px of content in "
                      + el.clientWidth + " px): " + describe(el));
    }
    const r = el.getBoundingClientRect();
    if (r.width > 0 && r.right > limit && !scrollers.some(s => s !== el && s.contains(el)))
      problems.push("runs past the content column by " + Math.round(r.right - limit) + " px: "
                    + describe(el));
  }
  // A fenced block flattened into a paragraph: the paragraph starts with the fence, or
  // is one inline code span that starts with the fence's language ("bash failfirst ...").
  const lang = /^(bash|sh|shell|console|python|ipython3?|pycon|text|json|yaml|sql|md|myst)\s+\S/;
  for (const p of main.querySelectorAll("p")) {
    const text = (p.textContent || "").trim();
    const first = p.firstElementChild;
    // ... and the inline code is the whole paragraph ("``python -m x`` runs ..." is prose).
    const leadingCode = first && first.tagName === "CODE" && text === first.textContent.trim();
    if (/^(```|~~~|:::)/.test(text) || (leadingCode && lang.test(first.textContent.trim())))
      problems.push("a code block rendered as a paragraph: " + describe(p));
  }
  const walker = document.createTreeWalker(main, NodeFilter.SHOW_TEXT);
  const raw = /\{[a-zA-Z][\w:.-]*\}`|(^|\n)\s*(```|:::)\{[\w:.-]+\}/;
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    if (n.parentElement.closest("code, pre, kbd, samp, script, style, .highlight")) continue;
    const m = raw.exec(n.textContent);
    if (m) problems.push("raw MyST syntax in the page: " + JSON.stringify(n.textContent.trim().slice(0, 80)));
  }
  // Text outside code: a literal backtick is Markdown that was not rendered (a caption
  // or a glued string written with `code` in it).
  const textWalker = document.createTreeWalker(main, NodeFilter.SHOW_TEXT);
  for (let n = textWalker.nextNode(); n; n = textWalker.nextNode()) {
    if (n.parentElement.closest("code, pre, kbd, samp, script, style, .highlight")) continue;
    if (n.textContent.includes("`"))
      problems.push("a literal backtick in rendered text: "
                    + JSON.stringify(n.textContent.trim().slice(0, 80)));
  }
  // A word broken inside a table cell ("heartbe|at"): a run of letters and digits whose
  // glyphs sit on more than one line. Breaking at "_" or "." (an identifier's joints) is fine.
  for (const cell of main.querySelectorAll("td, th")) {
    const cellWalker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
    for (let n = cellWalker.nextNode(); n; n = cellWalker.nextNode()) {
      for (const m of n.textContent.matchAll(/[A-Za-z0-9]{2,}/g)) {
        const range = document.createRange();
        range.setStart(n, m.index);
        range.setEnd(n, m.index + m[0].length);
        const tops = new Set(Array.from(range.getClientRects()).filter(r => r.width > 0)
                                                              .map(r => Math.round(r.top)));
        if (tops.size > 1) problems.push("a word broken inside a table cell: " + JSON.stringify(m[0])
                                         + " in " + describe(cell));
      }
    }
  }
  // A code block wider than its box: cut off unless the box scrolls; and a shell block
  // (commands a reader copies) must show every command whole, without scrolling.
  for (const pre of main.querySelectorAll("pre")) {
    if (pre.scrollWidth <= pre.clientWidth + 1) continue;
    let scrolls = false;
    for (let el = pre; el && el !== main; el = el.parentElement)
      if (["auto", "scroll"].includes(getComputedStyle(el).overflowX)) { scrolls = true; break; }
    const shell = pre.closest(
      "div[class*=highlight-bash], div[class*=highlight-shell], div[class*=highlight-console]");
    if (!scrolls)
      problems.push("a code block cut off at its right edge (" + pre.scrollWidth + " px in "
                    + pre.clientWidth + " px, no scrollbar): " + describe(pre));
    else if (shell)
      problems.push("a shell command wider than its box (" + pre.scrollWidth + " px in "
                    + pre.clientWidth + " px): " + describe(pre));
  }
  for (const img of document.images) {
    if (!(img.getAttribute("alt") || "").trim())
      problems.push("image without alt text: " + img.getAttribute("src"));
  }
  return problems;
}
"""

# The numbers a page publishes: generated-table cells (landing page, index) and a
# chapter's evidence summary, plus the chapter's text outside the summary.
_NUMBERS_JS = r"""
() => {
  const main = document.querySelector("article[role=main]") || document.body;
  const cells = [];
  for (const span of main.querySelectorAll("span.ff-num")) {
    const cls = Array.from(span.classList);
    const fm = (cls.find(c => c.startsWith("ff-fm-")) || "").slice(6);
    const field = (cls.find(c => c.startsWith("ff-field-")) || "").slice(9);
    const row = span.closest("tr");
    const link = row ? row.querySelector("a.reference.internal") : null;
    cells.push({fm, field, text: span.textContent.trim(), href: link ? link.href : null});
  }
  const summary = {};
  for (const span of main.querySelectorAll(".ff-evidence [data-ff-field]"))
    summary[span.dataset.ffField] = span.textContent.trim();
  const clone = main.cloneNode(true);
  clone.querySelectorAll(".ff-evidence").forEach(e => e.remove());
  return {cells, summary, text: clone.textContent};
}
"""


def compare_numbers(published: dict[str, list[dict]], chapters: dict[str, dict]) -> list[str]:
    """Every generated-table number against its chapter's evidence summary and text.

    ``published``: page -> cells (fm, field, text "N of M", href of the chapter);
    ``chapters``: page URL -> {"summary": field -> text, "text": the rest of the page}.
    """
    problems = []
    totals = {"violations": "runs", "reached": "runs", "negative_control": "negative_control_runs"}
    for page, cells in published.items():
        for cell in cells:
            if cell["text"] == "—" or not cell["href"]:
                continue
            chapter = chapters.get(cell["href"].split("#")[0])
            if chapter is None:
                problems.append(f"{page}: {cell['fm']} {cell['field']}: chapter page not found")
                continue
            count, _, total = cell["text"].replace(",", "").partition(" of ")
            summary = {k: v.replace(",", "") for k, v in chapter["summary"].items()}
            words = set(re.findall(r"\d+", chapter["text"].replace(",", "")))
            wanted = [(cell["field"], count.strip())]
            if total:
                wanted.append((totals[cell["field"]], total.strip()))
            for field, value in wanted:
                shown = summary.get(field)
                if shown is None and summary:
                    problems.append(f"{page}: {cell['fm']} {field} is {value}, its chapter's "
                                    "summary shows none")
                elif shown is not None and shown != value:
                    problems.append(f"{page}: {cell['fm']} {field} is {value}, its chapter "
                                    f"publishes {shown}")
                elif value not in ("0", "1") and value not in words:
                    problems.append(f"{page}: {cell['fm']} {field} is {value}, which its chapter's "
                                    "text never says")
    return problems


_HEIGHT_JS = "() => document.documentElement.scrollHeight"


def height_problem(name: str, height_px: int) -> str | None:
    """Why a page of ``height_px`` is too tall, or None."""
    if name in SPHINX_PAGES or name in TALL_PAGES or height_px <= PAGE_HEIGHT_MAX_PX:
        return None
    return (f"the page is {height_px:,} px tall, past the ceiling of {PAGE_HEIGHT_MAX_PX:,} px: "
            "show the lines that teach and fold the rest (a dropdown, hide-input, hide-output)")


def check(root: Path) -> int:
    from playwright.sync_api import sync_playwright

    if not (root / "index.html").is_file():
        print(f"check_site: {root}/index.html is missing; run `make html` first", file=sys.stderr)
        return 2
    server, base = serve(root)
    failures: list[str] = []
    passed = 0
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                         args=CHROMIUM_ARGS)
            context = browser.new_context(viewport=VIEWPORT)
            outside: list[str] = []

            def route(r):  # everything not on loopback is aborted and reported
                if urlsplit(r.request.url).hostname == "127.0.0.1":
                    r.continue_()
                else:
                    outside.append(r.request.url)
                    r.abort()

            context.route("**/*", route)
            published: dict[str, list[dict]] = {}
            numbers: dict[str, dict] = {}
            for name in pages(root):
                problems = check_page(context, base, name, outside, numbers)
                if name in NUMBER_PAGES:
                    published[name] = numbers[base + name]["cells"]
                if problems:
                    failures += [f"{name}: {p}" for p in problems]
                else:
                    passed += 1
            for problem in compare_numbers(published, numbers):
                failures.append(problem)
            browser.close()
    finally:
        server.shutdown()
    for f in failures:
        print("FAIL", f)
    failed_pages = len({f.split(":", 1)[0] for f in failures})
    print(f"check_site: {passed} passed, {failed_pages} failed")
    return 1 if failures else 0


def check_page(context, base: str, name: str, outside: list[str],
               numbers: dict[str, dict] | None = None) -> list[str]:
    problems: list[str] = []
    page = context.new_page()
    page.on("console", lambda m: m.type == "error" and problems.append(f"console error: {m.text}"))
    page.on("pageerror", lambda e: problems.append(f"uncaught exception: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url} ({r.failure})"))
    page.on("response", lambda r: r.status >= 400 and problems.append(f"HTTP {r.status}: {r.url}"))
    del outside[:]
    response = page.goto(base + name, wait_until="load", timeout=PAGE_TIMEOUT_MS)
    if response is None or response.status != 200:
        problems.append(f"page answered {response.status if response else 'nothing'}")
    images = page.evaluate(_IMAGES_JS)
    for img in images:
        if not img["width"]:
            problems.append(f"image did not render: {img['src']}")
    wanted = DIAGRAMS.get(name, 1 if Path(name).name.startswith(FM_PREFIX) else 0)
    diagrams = [i for i in images if i["output"] and i["src"].endswith(".svg") and i["width"]]
    if len(diagrams) < wanted:
        problems.append(f"{len(diagrams)} rendered diagram(s), expected at least {wanted}")
    if name not in SPHINX_PAGES:  # Sphinx's own index pages: their layout is not ours
        problems += page.evaluate(_PAGE_JS)
    tall = height_problem(name, page.evaluate(_HEIGHT_JS))  # after the images loaded
    if tall:
        problems.append(tall)
    if numbers is not None:
        numbers[urljoin(base, name)] = page.evaluate(_NUMBERS_JS)
    # An executed chapter (it has code cells) must offer its notebook.
    if page.locator("div.cell").count():
        links = page.locator(".ff-nb-download a.download")
        if links.count() != 1:
            problems.append("no notebook download link")
        else:
            url = links.first.evaluate("a => a.href")
            got = context.request.get(url)
            if got.status != 200:
                problems.append(f"notebook link answered {got.status}: {url}")
            else:
                try:
                    nb = json.loads(got.body())
                    assert nb["nbformat"] == 4 and nb["cells"]
                except (ValueError, KeyError, AssertionError):
                    problems.append(f"notebook link does not serve a notebook: {url}")
                else:
                    problems += [f"raw MyST in the notebook: {r}" for r in nbexport.raw_syntax(nb)]
    page.close()
    problems += [f"request left loopback (aborted): {u}" for u in outside]
    return problems


if __name__ == "__main__":
    sys.exit(check(Path(sys.argv[1] if len(sys.argv) > 1 else "_build/html")))

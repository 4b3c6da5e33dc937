"""`make test-site`: check the built book in a real browser, with the network off.

Usage: python book/_tools/check_site.py [_build/html]

Serves the site on 127.0.0.1 (a free port, in this process) and opens every
page in headless Chromium (Debian's /usr/bin/chromium, driven by Playwright;
never `playwright install`). Every request that is not for 127.0.0.1 is
aborted and counted as a failure. For each page it checks:

- the page loads (HTTP 200) with no console error and no uncaught exception;
- no request failed or answered >= 400, and none left loopback;
- every <img> loaded (naturalWidth > 0), so every diagram rendered;
- pages that must show a diagram have at least one rendered SVG image;
- every executed chapter links its notebook, and the link serves a valid .ipynb.

Prints one line per failure and ends with "check_site: N passed, M failed".
"""

from __future__ import annotations

import functools
import json
import os
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

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
            context = browser.new_context()
            outside: list[str] = []

            def route(r):  # everything not on loopback is aborted and reported
                if urlsplit(r.request.url).hostname == "127.0.0.1":
                    r.continue_()
                else:
                    outside.append(r.request.url)
                    r.abort()

            context.route("**/*", route)
            for name in pages(root):
                problems = check_page(context, base, name, outside)
                if problems:
                    failures += [f"{name}: {p}" for p in problems]
                else:
                    passed += 1
            browser.close()
    finally:
        server.shutdown()
    for f in failures:
        print("FAIL", f)
    failed_pages = len({f.split(":", 1)[0] for f in failures})
    print(f"check_site: {passed} passed, {failed_pages} failed")
    return 1 if failures else 0


def check_page(context, base: str, name: str, outside: list[str]) -> list[str]:
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
    page.close()
    problems += [f"request left loopback (aborted): {u}" for u in outside]
    return problems


if __name__ == "__main__":
    sys.exit(check(Path(sys.argv[1] if len(sys.argv) > 1 else "_build/html")))

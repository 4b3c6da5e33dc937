"""The site check catches each class of defect: a planted defect per check.

Each test renders a small page in headless Chromium (the same checks `make
test-site` runs on the built book) or feeds a small notebook or table to the
checker, once with the defect and once without. `make test-site` runs this file
first; `make test` does not collect it (the name does not match ``test_*.py``),
since it needs the Chromium that only the site check needs.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from failfirst_book import check_site, nbexport

SVG = ("data:image/svg+xml;utf8,<svg xmlns='http://www.w3.org/2000/svg' width='10' "
       "height='10'><rect width='10' height='10'/></svg>")


def _page(body: str) -> str:
    # The content column as furo lays it out: an article of fixed width.
    return (f"<html><body><div style='width:1200px'><article role='main' style='width:700px'>"
            f"{body}</article></div></body></html>")


@pytest.fixture(scope="module")
def page():
    if not os.access(check_site.CHROMIUM, os.X_OK):
        pytest.skip(f"no Chromium at {check_site.CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=check_site.CHROMIUM, headless=True,
                                     args=check_site.CHROMIUM_ARGS)
        pg = browser.new_page(viewport=check_site.VIEWPORT)
        yield pg
        browser.close()


def problems(page, body: str) -> list[str]:
    page.set_content(_page(body))
    return page.evaluate(check_site._PAGE_JS)


CLEAN = f"<p>A paragraph.</p><pre>short code</pre><img src=\"{SVG}\" alt=\"a square\">"


def test_a_clean_page_passes(page):
    assert problems(page, CLEAN) == []


def test_overflow_past_the_column(page):
    found = problems(page, CLEAN + "<div style='width:1000px'>wide</div>")
    assert any("runs past the content column" in p for p in found), found


def test_table_cut_behind_a_scrollbar(page):
    wide = ("<div class='cell_output'><div style='overflow-x:auto'><table><tr>"
            + "<td style='white-space:nowrap'>" + "x" * 400 + "</td></tr></table></div></div>")
    found = problems(page, CLEAN + wide)
    assert any("cut at the right edge" in p for p in found), found


def test_source_listings_may_scroll(page):
    listing = ("<div class='highlight-python'><div class='highlight' style='overflow-x:auto'>"
               "<pre>" + "y" * 400 + "</pre></div></div>")
    assert problems(page, CLEAN + listing) == []


def test_code_block_rendered_as_a_paragraph(page):
    # What myst made of a glued ```bash block inside a paragraph: inline code.
    found = problems(page, CLEAN + "<p><code>bash failfirst run FM_001 --guard off</code></p>")
    assert any("code block rendered as a paragraph" in p for p in found), found
    # A sentence that happens to start with a language's name is prose.
    assert problems(page, CLEAN + "<p>text with the password replaced by ***</p>") == []
    assert problems(page, CLEAN + "<p><code>python -m failfirst.realrun.process</code> runs one</p>") == []
    found = problems(page, CLEAN + "<p>```bash failfirst list ```</p>")
    assert any("code block rendered as a paragraph" in p for p in found), found


def test_raw_role_or_directive_in_a_page(page):
    found = problems(page, CLEAN + "<p>every layer retrying {glue:text}`fm3_retries` times</p>")
    assert any("raw MyST syntax" in p for p in found), found
    found = problems(page, CLEAN + "<p>```{include} ../spec.md\n:start-after: x</p>")
    assert any("raw MyST syntax" in p for p in found), found
    # The same text inside code is an example, not a defect.
    assert problems(page, CLEAN + "<p>write <code>{term}`lease`</code></p>") == []


def test_figure_without_alt_text(page):
    found = problems(page, CLEAN + f"<img src=\"{SVG}\">")
    assert any("image without alt text" in p for p in found), found


def test_raw_myst_in_a_notebook():
    nb = {"cells": [
        {"cell_type": "markdown", "source": "One job, every layer retrying {glue:text}`n` times."},
        {"cell_type": "markdown", "source": "```{glue:md} cmds\n:format: myst\n```"},
        {"cell_type": "code", "source": "print('{glue:text}`n`')", "outputs": []},
    ]}
    found = nbexport.raw_syntax(nb)
    assert len(found) == 2 and "cell 0" in found[0] and "cell 1" in found[1], found
    nbexport.render(nb, Path("."), glue={"n": {"text/plain": "3"},
                                         "cmds": {"text/markdown": "```bash\nfailfirst list\n```"}})
    assert nbexport.raw_syntax(nb) == []
    assert "retrying 3 times" in nb["cells"][0]["source"]
    assert nb["cells"][1]["source"] == "```bash\nfailfirst list\n```"


def _chapter(summary: dict[str, str], text: str) -> dict:
    return {"summary": summary, "text": text}


def test_landing_number_differs_from_its_chapter():
    cells = {"index.html": [
        {"fm": "FM_002", "field": "violations", "text": "0 of 432", "href": "http://h/FM_002.html"},
    ]}
    # The chapter publishes 288 runs: the landing page's 432 is caught.
    chapters = {"http://h/FM_002.html": _chapter({"violations": "0", "runs": "288"},
                                                 "all 288 schedules ran")}
    found = check_site.compare_numbers(cells, chapters)
    assert found and "432" in found[0] and "288" in found[0], found
    # Equal numbers pass.
    chapters["http://h/FM_002.html"]["summary"]["runs"] = "432"
    chapters["http://h/FM_002.html"]["text"] = "all 432 schedules ran"
    assert check_site.compare_numbers(cells, chapters) == []


def test_summary_number_the_chapter_never_says():
    cells = {"failure_mode_index.html": [
        {"fm": "FM_004", "field": "negative_control", "text": "128 of 300",
         "href": "http://h/FM_004.html"},
    ]}
    chapters = {"http://h/FM_004.html": _chapter(
        {"negative_control": "128", "negative_control_runs": "300"},
        "without the guardrail, 128 of 200 random schedules left a job leased")}
    found = check_site.compare_numbers(cells, chapters)
    assert found == ["failure_mode_index.html: FM_004 negative_control_runs is 300, which its "
                     "chapter's text never says"], found


def test_literal_backtick_in_rendered_text(page):
    found = problems(page, CLEAN + "<p>failfirst alone (`make stress` had not run)</p>")
    assert any("literal backtick" in p for p in found), found
    assert problems(page, CLEAN + "<p>run <code>make stress</code> first</p>") == []


def test_word_broken_inside_a_table_cell(page):
    # What overflow-wrap: anywhere does to a narrow column: "heartbe|at".
    broken = ("<table style='width:120px'><tr><td style='overflow-wrap:anywhere'>heartbeat "
              "heartbeat</td><td style='width:100px'>x</td></tr></table>")
    found = problems(page, CLEAN + broken)
    assert any("word broken inside a table cell" in p and "heartbeat" in p for p in found), found
    # Wrapping between words, or at an identifier's underscore, is fine.
    fine = ("<table style='width:120px'><tr><td>heartbeat heartbeat</td>"
            "<td>server_<wbr>crash</td></tr></table>")
    assert problems(page, CLEAN + fine) == []


def test_code_block_cut_off_without_a_scrollbar(page):
    cut = "<div class='highlight-python'><pre style='overflow:hidden'>" + "z " * 300 + "</pre></div>"
    found = problems(page, CLEAN + cut.replace("z ", "z"))
    assert any("cut off at its right edge" in p for p in found), found


def test_a_shell_command_must_fit_its_box(page):
    wide = ("<div class='highlight-bash'><div class='highlight' style='overflow-x:auto'><pre>"
            + "failfirst explore FM_001 --guard on --json " * 12 + "</pre></div></div>")
    found = problems(page, CLEAN + wide)
    assert any("shell command wider than its box" in p for p in found), found
    wrapped = wide.replace("<pre>", "<pre style='white-space:pre-wrap'>")
    assert problems(page, CLEAN + wrapped) == []


def test_a_folded_listing_and_a_dedented_excerpt_read_in_the_notebook(tmp_path):
    source = tmp_path / "code.py"
    source.write_text("def f(x):\n    if x:\n        return 1\n    return 2\n")
    nb = {"cells": [{"cell_type": "markdown", "source": (
        "```{literalinclude} code.py\n:pyobject: f\n:start-at: if x:\n:end-before: return 2\n"
        ":dedent: 4\n```\n\n"
        ":::{dropdown} The whole function\n```{literalinclude} code.py\n:pyobject: f\n```\n:::")}]}
    nbexport.render(nb, tmp_path, glue={})
    text = nb["cells"][0]["source"]
    assert text.startswith("```\nif x:\n    return 1\n```"), text
    assert "**The whole function**" in text and "def f(x):" in text, text
    assert nbexport.raw_syntax(nb) == [], text


def test_a_page_past_the_height_ceiling(page):
    page.set_content(_page(CLEAN + f"<div style='height:{check_site.PAGE_HEIGHT_MAX_PX}px'>long</div>"))
    height = page.evaluate(check_site._HEIGHT_JS)
    found = check_site.height_problem("FM_006_zombie_worker.html", height)
    assert found and "past the ceiling" in found, (height, found)
    # The API reference is long by nature; a short page passes.
    assert check_site.height_problem("reference/api.html", height) is None
    page.set_content(_page(CLEAN))
    short = page.evaluate(check_site._HEIGHT_JS)
    assert check_site.height_problem("FM_006_zombie_worker.html", short) is None

"""``failfirst new NAME`` (#22): a bundle and its chapter that pass at once, made in a
temporary copy of the catalogue (never in this repository), and refusals that write
nothing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from failfirst.cli import main
from failfirst.sim import catalogue
from failfirst.sim.scaffold import ScaffoldError, _move_into_place

REPO = catalogue.bundles_dir().parent


def _copy_of_the_repository(root: Path) -> Path:
    skip = shutil.ignore_patterns("__pycache__", "_build", ".ipynb_checkpoints")
    shutil.copytree(REPO / "failure_modes", root / "failure_modes", ignore=skip)
    shutil.copytree(REPO / "book", root / "book", ignore=skip)
    return root


def _tree(root: Path) -> dict[str, bytes]:
    """Every file under the copy and its bytes: what 'nothing written' compares."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _run(*argv: str, root: Path) -> subprocess.CompletedProcess[str]:
    """A command in a process whose ``failure_modes`` is the copy's (PYTHONPATH comes
    before the editable install of this repository)."""
    env = dict(os.environ, PYTHONPATH=str(root))
    return subprocess.run([sys.executable, *argv], cwd=root, env=env, capture_output=True,
                          text=True, timeout=600)


@pytest.fixture(scope="module")
def scaffolded(tmp_path_factory):
    root = _copy_of_the_repository(tmp_path_factory.mktemp("repo"))
    code = main(["new", "lost_wakeup", "--root", str(root), "--json"])
    assert code == 0
    return root


def test_new_takes_the_next_id_and_writes_the_bundle_and_its_chapter(scaffolded, capsys):
    bundle = scaffolded / "failure_modes" / "FM_011_lost_wakeup"
    assert sorted(str(p.relative_to(bundle)) for p in bundle.rglob("*") if p.is_file()) == [
        "__init__.py", "scenario.py", "spec.md", "tests/__init__.py",
        "tests/test_prevent_fm011.py", "tests/test_recover_fm011.py", "tests/test_repro_fm011.py"]
    chapter = (scaffolded / "book" / "FM_011_lost_wakeup.md").read_text()
    assert chapter.splitlines()[13] == "# FM_011 — Lost wakeup"
    assert 'fm="FM_011"' in chapter and "negative_control=control.violating" in chapter
    assert not [p for p in scaffolded.rglob(".new-*")], "no staging left behind"
    assert not (REPO / "failure_modes" / "FM_011_lost_wakeup").exists()


def test_the_new_bundle_agrees_with_its_spec_scenario_and_chapter(scaffolded):
    check = _run("-c", "from failfirst.sim import catalogue; print(catalogue.bundle_problems()); "
                       "print(catalogue.load('11').title)", root=scaffolded)
    assert check.returncode == 0, check.stderr
    assert check.stdout.splitlines() == ["[]", "Lost wakeup"]


def test_the_new_bundles_tests_pass_as_they_are(scaffolded):
    tests = scaffolded / "failure_modes" / "FM_011_lost_wakeup" / "tests"
    result = _run("-m", "pytest", "-q", "-p", "no:cacheprovider", str(tests), root=scaffolded)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 passed" in result.stdout


def test_the_new_chapter_executes(scaffolded):
    chapter = scaffolded / "book" / "FM_011_lost_wakeup.md"
    result = _run("-m", "pytest", "-q", "-p", "no:cacheprovider", str(chapter), root=scaffolded)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


def test_the_new_code_passes_the_linter(scaffolded):
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--config", str(REPO / "pyproject.toml"),
         "--config", "lint.isort.known-first-party = ['failfirst', 'failure_modes']",
         str(scaffolded / "failure_modes" / "FM_011_lost_wakeup")],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def _refused(capsys, root: Path, *argv: str) -> str:
    before = _tree(root)
    code = main(["new", *argv, "--root", str(root)])
    out, err = capsys.readouterr()
    assert code == 2 and out == "", (code, out, err)
    assert err.startswith("failfirst: error: ") and err.count("\n") == 1
    assert _tree(root) == before, "a refused scaffold writes nothing"
    return err


@pytest.fixture
def repo(tmp_path) -> Path:
    return _copy_of_the_repository(tmp_path)


@pytest.mark.parametrize("name", ["Lost_wakeup", "lost-wakeup", "lost__wakeup", "_lost", "lost_",
                                  "1lost", "lost wakeup", "lost\u0661", "caf\u00e9", "x" * 41,
                                  "x" * 5000, "../evil", "FM_011_lost"])
def test_a_bad_name_is_refused(capsys, repo, name):
    err = _refused(capsys, repo, name)
    assert "snake_case" in err and len(err) < 400


def test_an_existing_bundle_is_refused(capsys, repo):
    err = _refused(capsys, repo, "retry_duplication")
    assert "exists: failure_modes/FM_001_retry_duplication" in err


def test_a_folder_that_is_not_a_checkout_is_refused(capsys, tmp_path):
    err = _refused(capsys, tmp_path, "lost_wakeup")
    assert "no such folder" in err


def test_a_read_only_tree_is_refused(repo):
    """The copy is made read-only for real: by its mode for a user, by a read-only bind
    mount in a user namespace for root (whom a mode does not stop)."""
    before = _tree(repo)
    argv = [sys.executable, "-m", "failfirst.cli", "new", "lost_wakeup", "--root", str(repo)]
    if os.geteuid() != 0:
        for folder in (repo / "failure_modes", repo / "book"):
            folder.chmod(0o555)
        try:
            result = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        finally:
            for folder in (repo / "failure_modes", repo / "book"):
                folder.chmod(0o755)
    else:
        if shutil.which("unshare") is None:
            pytest.skip("as root, a read-only tree needs unshare (util-linux)")
        script = (f'mount --bind "{repo}" "{repo}" && mount -o remount,bind,ro "{repo}" && '
                  'exec "$@"')
        result = subprocess.run(["unshare", "-rm", "sh", "-c", script, "sh", *argv],
                                capture_output=True, text=True, timeout=120)
        if "mount" in result.stderr and result.returncode != 2:
            pytest.skip(f"setup: no read-only bind mount here: {result.stderr.strip()[:100]}")
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "cannot write" in result.stderr, result.stderr
    assert _tree(repo) == before


def test_a_chapter_that_cannot_be_placed_takes_the_bundle_back(tmp_path):
    """The last step fails (the chapter's name is taken meanwhile): the bundle folder
    already moved into place goes back, so the tree is as it was."""
    stage = tmp_path / "failure_modes" / ".new-x"
    (stage / "FM_011_lost_wakeup").mkdir(parents=True)
    (tmp_path / "book").mkdir()
    draft = tmp_path / "book" / ".new-x.md.part"
    draft.write_text("chapter")
    bundle = tmp_path / "failure_modes" / "FM_011_lost_wakeup"
    chapter = tmp_path / "book" / "FM_011_lost_wakeup.md"
    os.symlink("elsewhere", chapter)  # taken, and exists() does not see a dangling link
    with pytest.raises(ScaffoldError, match="it exists"):
        _move_into_place(stage, bundle, draft, chapter, "FM_011", [])
    assert not bundle.exists() and (stage / "FM_011_lost_wakeup").is_dir()
    assert os.readlink(chapter) == "elsewhere"


def test_new_json_names_what_it_made(capsys, repo):
    assert main(["new", "lost_wakeup", "--root", str(repo), "--json"]) == 0
    made = json.loads(capsys.readouterr().out)
    assert made["fm"] == "FM_011" and made["chapter"] == "book/FM_011_lost_wakeup.md"
    assert all((repo / f).is_file() for f in made["files"])

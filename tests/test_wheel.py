"""The wheel a reader installs: built from this checkout and installed with uv into a
fresh virtual environment beside a small Celery project, it adds the one top-level
name ``failfirst``, runs the command line on the catalogue it carries, runs real worker
processes on SQLite without psycopg and names the extra a PostgreSQL store needs, and
its pytest plugin finds the double charge in the project's naive task. Nothing of the
checkout is importable there: what passes here is what a reader gets."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.wheel

REPO = Path(__file__).resolve().parent.parent
#: A hung build or install fails its test instead of holding the suite.
STEP_TIMEOUT_S = 120


def _uv() -> str:
    """The uv ``make`` uses: the one on PATH, else the checkout's private copy."""
    found = shutil.which("uv") or str(REPO / ".uv-bootstrap" / "bin" / "uv")
    if not Path(found).is_file():
        pytest.fail("no uv on PATH nor at .uv-bootstrap/bin/uv: run `make sync` first", pytrace=False)
    return found


def _clean_env() -> dict[str, str]:
    """This process's environment without what would point a child at the checkout's
    environment instead of the fresh one."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "UV_PROJECT_ENVIRONMENT", "CONDA_PREFIX")}
    return env | {"PYTHONDONTWRITEBYTECODE": "1"}


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, env=_clean_env(), capture_output=True, text=True,
                          timeout=STEP_TIMEOUT_S)  # real-time: a build or install that hangs fails


def _uv_from_cache_else_online(args: list[str], cwd: Path, what: str) -> None:
    """uv from its cache (no network), else online; neither: one line saying which step."""
    if _run([_uv(), *args, "--offline"], cwd).returncode == 0:
        return
    online = _run([_uv(), *args], cwd)
    if online.returncode != 0:
        last = (online.stderr.strip().splitlines() or ["no output"])[-1]
        pytest.fail(f"{what}: uv could not, neither from its cache nor online: {last}", pytrace=False)


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment holding the wheel with the ``tasks`` extra, Celery and
    pytest, and nothing else."""
    root = tmp_path_factory.mktemp("wheel")
    _uv_from_cache_else_online(["build", "--wheel", "--out-dir", str(root / "dist"), str(REPO)], root,
                               "building the wheel")
    (wheel,) = (root / "dist").glob("failfirst-*.whl")
    _uv_from_cache_else_online(["venv", "--python", sys.executable, str(root / "venv")], root,
                               "making a virtual environment")
    python = root / "venv" / "bin" / "python"
    _uv_from_cache_else_online(["pip", "install", "--python", str(python), f"{wheel}[tasks]", "celery",
                                "pytest"], root, "installing the wheel")
    return root / "venv"


def _python(venv: Path, code: str) -> str:
    done = _run([str(venv / "bin" / "python"), "-c", code], venv.parent)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _site_packages(venv: Path) -> Path:
    return Path(_python(venv, "import sysconfig; print(sysconfig.get_path('purelib'))").strip())


def test_the_wheel_adds_only_the_failfirst_name(venv):
    site = _site_packages(venv)
    (record,) = site.glob("failfirst-*.dist-info/RECORD")
    installed = [line.split(",")[0] for line in record.read_text().splitlines() if line]
    top_level = {path.split("/")[0] for path in installed if not path.startswith("..")}
    assert top_level == {"failfirst", record.parent.name}, top_level
    assert not (site / "failure_modes").exists()
    # The scripts it adds, outside site-packages: the command line only.
    assert [Path(p).name for p in installed if p.startswith("..")] == ["failfirst"]


def test_the_installed_failfirst_reads_its_own_catalogue_and_imports_every_bundle(venv):
    code = textwrap.dedent("""
        import importlib, importlib.util, json, pkgutil
        import failfirst, failfirst.failure_modes as packaged
        from failfirst.sim import catalogue
        modules = [m.name for m in pkgutil.walk_packages(packaged.__path__, packaged.__name__ + ".")]
        for name in modules:
            importlib.import_module(name)
        print(json.dumps({"file": failfirst.__file__, "package": catalogue.catalogue_package(),
                          "bundles": sorted(catalogue.bundles()), "modules": len(modules),
                          "failure_modes": importlib.util.find_spec("failure_modes") is not None,
                          "psycopg": importlib.util.find_spec("psycopg") is not None}))
    """)
    seen = json.loads(_python(venv, code))
    assert Path(seen["file"]).is_relative_to(venv), "failfirst was imported from outside the fresh venv"
    assert seen["package"] == "failfirst.failure_modes"
    assert seen["bundles"] == [f"FM_{n:03d}" for n in range(1, 11)]
    assert seen["modules"] >= 20  # every bundle, its scenario, and helper modules such as FM_008's
    assert seen["failure_modes"] is False and seen["psycopg"] is False


def test_the_command_line_lists_runs_and_explores_the_catalogue(venv):
    failfirst = str(venv / "bin" / "failfirst")
    listed = _run([failfirst, "list", "--json"], venv.parent)
    assert listed.returncode == 0, listed.stderr
    assert [row["id"] for row in json.loads(listed.stdout)] == [f"FM_{n:03d}" for n in range(1, 11)]
    ran = _run([failfirst, "run", "FM_001"], venv.parent)
    assert ran.returncode == 0 and "no violations" in ran.stdout, ran.stderr
    explored = _run([failfirst, "explore", "FM_001", "--guard", "off", "--json"], venv.parent)
    assert explored.returncode == 0, explored.stderr
    violations = json.loads(explored.stdout)["counterexample"]["violations"]
    assert [v["invariant"] for v in violations] == ["INV_001"]


def test_a_real_run_on_sqlite_needs_no_postgresql_driver(venv):
    """Worker processes on a SQLite file: nothing on that path imports psycopg."""
    db = venv.parent / "real.db"
    failfirst = str(venv / "bin" / "failfirst")
    ran = _run([failfirst, "stress", "--db", str(db), "--jobs", "20", "--workers", "2"], venv.parent)
    assert ran.returncode == 0, ran.stderr
    assert "20 succeeded" in ran.stdout and "every invariant holds" in ran.stdout
    checked = _run([failfirst, "check", "--db", str(db)], venv.parent)
    assert checked.returncode == 0 and "every invariant holds" in checked.stdout, checked.stderr


def test_a_postgresql_store_without_psycopg_is_one_line_naming_the_extra(venv):
    done = _run([str(venv / "bin" / "failfirst"), "run", "FM_001", "--store", "postgresql://x@127.0.0.1/y"],
                venv.parent)
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("failfirst: error: "), done.stderr
    assert "install 'failfirst[postgresql]'" in lines[0]


BILLING_TASKS = '''
import httpx
from celery import Celery

app = Celery("billing", broker="memory://")
app.conf.task_acks_late = True
PAYMENTS_URL = "https://payments.example/v1/charges"


@app.task(name="billing.charge")
def charge(order_id: int) -> str:
    reply = httpx.post(PAYMENTS_URL, json={"order": order_id})
    reply.raise_for_status()
    return reply.json()["id"]


@app.task(name="billing.charge_once")
def charge_once(order_id: int) -> str:
    reply = httpx.post(PAYMENTS_URL, json={"order": order_id},
                       headers={"Idempotency-Key": f"order-{order_id}"})
    reply.raise_for_status()
    return reply.json()["id"]
'''

BILLING_TESTS = '''
import failfirst
from failfirst.tasks import Service

from billing.tasks import charge, charge_once

PAYMENTS = Service("https://payments.example", effects={"POST /v1/charges": "charge"})


def test_charge_charges_at_most_once():
    failfirst.prove(charge, 7, services=[PAYMENTS], invariants=["INV_001"], max_faults=2)


def test_charge_once_charges_at_most_once(failfirst_prove):
    failfirst_prove(charge_once, 7, services=[PAYMENTS], invariants=["INV_001"], max_faults=2)
'''


def test_the_plugin_finds_the_double_charge_in_a_celery_project(venv, tmp_path):
    """The reader's project: a Celery app whose task calls a payments API with httpx,
    and a test of it, run by the fresh venv's pytest (which loads the plugin by its
    entry point: ``failfirst_prove`` is its fixture)."""
    (tmp_path / "billing").mkdir()
    (tmp_path / "billing" / "__init__.py").write_text("")
    (tmp_path / "billing" / "tasks.py").write_text(BILLING_TASKS)
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_billing.py").write_text(BILLING_TESTS)
    (tmp_path / "pytest.ini").write_text("[pytest]\ntestpaths = tests\n")
    done = _run([str(venv / "bin" / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider"], tmp_path)
    out = done.stdout
    assert done.returncode == 1, out + done.stderr
    assert "1 failed, 1 passed" in out
    assert "FAILED tests/test_billing.py::test_charge_charges_at_most_once" in out
    assert "payments applied 'charge' 2 times" in out
    assert "Minimal counterexample (1 fault)" in out
    assert "--failfirst-replay=" in out
    assert "failfirst proofs" in out  # the plugin's session summary

"""The ``failfirst`` command line. This module owns the CLI contract.

Bad input exits 2 with a one-line reason on stderr. An experiment that finds a
violation still exits 0: finding it is its job. An experiment that breaks (a
store that stops answering mid-run included: a lost connection, a crashed
server, a statement timeout), or output that cannot be written, exits 1 with one
line that says how to finish; Ctrl-C exits 130 and SIGTERM 143, each with one
line, after the children are stopped. Anything else is a bug in failfirst and
shows its traceback: it is never passed off as bad input.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from failfirst.proofs.run import RunResult, replay, run_scenario
from failfirst.proofs.words import plural
from failfirst.sim import catalogue, history
from failfirst.sim.choices import ScheduleError
from failfirst.store import StoreUnavailable
from failfirst.store.echo import MAX_SHOWN_CHARS, shown
from failfirst.store.sqlite import shown_path

EXIT_USAGE = 2
#: The experiment could not complete (not bad input): one line on stderr too.
EXIT_FAILED = 1
#: 128 + the signal's number, as shells report a process that a signal stopped.
EXIT_INTERRUPTED = 128 + signal.SIGINT
EXIT_TERMINATED = 128 + signal.SIGTERM
#: ``explore --runs``: random schedules in one exploration (minutes at most).
MAX_RUNS = 1_000_000
#: ``explore --workers``: more processes than this only queue for the same cores.
MAX_EXPLORE_WORKERS = min(64, 4 * (os.cpu_count() or 1))


class UsageError(Exception):
    """Bad input from the user: reported in one line, exit code 2."""


class Terminated(BaseException):
    """SIGTERM arrived: unwinds like Ctrl-C, so every ``finally`` stops its children."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, not argparse's usage block
        raise UsageError(_shortened(message))


#: A value argparse quotes in its messages ("invalid choice: '...'").
_QUOTED = re.compile(r"'((?:[^'\\]|\\.){" + str(MAX_SHOWN_CHARS + 1) + r",})'")
_UNRECOGNIZED = "unrecognized arguments: "


def _shortened(message: str) -> str:
    """argparse's message with the user's input in it shortened as every echo is."""
    if message.startswith(_UNRECOGNIZED):
        return _UNRECOGNIZED + shown(message[len(_UNRECOGNIZED):])
    return _QUOTED.sub(lambda m: shown(m.group(1)), message)


def _db_path(text: str) -> str:
    """--db: a path; an empty one names no file (the current folder is not a database)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("empty path")
    return text


#: ASCII digits only: ``int()`` alone also takes ``١`` (an Arabic-Indic one) or ``1_0``.
_INTEGER = re.compile(r"[+-]?[0-9]+", re.ASCII)


def _int(text: str) -> int:
    if not _INTEGER.fullmatch(text.strip()):
        raise argparse.ArgumentTypeError(f"not an integer: {shown(text)}")
    return int(text)


def _non_negative_int(text: str) -> int:
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0: {shown(text)}")
    return value


def _positive_int(text: str) -> int:
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1: {shown(text)}")
    return value


def _bounded_int(low: int, high: int, why: str) -> Any:
    def parse(text: str) -> int:
        value = _int(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be in {low}..{high} ({why}): {shown(text)}")
        return value
    return parse


def _non_negative_float(text: str) -> float:
    try:
        if not text.isascii():  # float() too takes digits of every script
            raise ValueError(text)
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {shown(text)}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0: {shown(text)}")
    return value


def _job_list(text: str) -> tuple[int, ...]:
    """--jobs 1,3: positions of the scenario's jobs, ascending, each once."""
    parts = text.split(",")
    if not all(p.isascii() and p.isdigit() and len(p) <= 4 for p in parts):
        raise argparse.ArgumentTypeError(f"not a list of job numbers: {text[:40]!r}")
    jobs = tuple(int(p) for p in parts)
    if any(j < 1 for j in jobs) or list(jobs) != sorted(set(jobs)):
        raise argparse.ArgumentTypeError(f"job numbers start at 1, ascending, each once: {text[:40]!r}")
    return jobs


def _guard(parser: argparse.ArgumentParser, help_text: str) -> None:
    parser.add_argument("--guard", choices=("on", "off"), default="on", help=help_text)


def _store_url(text: str) -> str:
    """--store: checked here (a malformed URL is bad input); reached when the command runs."""
    from failfirst.store import parse_store_url

    parse_store_url(text)
    return text


def _store(parser: argparse.ArgumentParser, help_text: str, **kwargs: Any) -> None:
    parser.add_argument("--store", metavar="URL", type=_store_url, help=help_text, **kwargs)


_SIM_STORE_HELP = ("the store to simulate on: sqlite::memory: (default) or postgresql://... "
                   "(a private schema, dropped afterwards)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="failfirst", description="Deterministic failure experiments for job processing.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    json_help = "print the result as one JSON object instead of text"
    fm_help = "a failure-mode id: FM_001, fm_001, FM_1 and 1 all name FM_001"
    guard_help = "the guardrail this failure mode studies (default: on)"
    history_help = "also write the run's history to FILE as JSON Lines"

    p = sub.add_parser("list", help="the failure modes in the catalogue")
    p.add_argument("--json", action="store_true", help=json_help)

    p = sub.add_parser("run", help="one seeded run of a failure mode's scenario")
    p.add_argument("fm", metavar="FM_ID", help=fm_help)
    _guard(p, guard_help)
    p.add_argument("--seed", type=_non_negative_int, default=0,
                   help="seed of the run's scheduling and fault choices (default: 0)")
    p.add_argument("--history", metavar="FILE", help=history_help)
    _store(p, _SIM_STORE_HELP)
    p.add_argument("--json", action="store_true", help=json_help)

    p = sub.add_parser("replay", help="re-run one schedule exactly")
    p.add_argument("fm", metavar="FM_ID", help=fm_help)
    p.add_argument("--schedule", required=True, metavar="S",
                   help="a schedule string as run and explore print it, e.g. s1f1:0102; "
                        "every choice must be used")
    p.add_argument("--jobs", type=_job_list, default=None, metavar="N[,N...]",
                   help="only these of the scenario's jobs (1-based, in order), as a "
                        "counterexample shrunk over the scenario names them")
    p.add_argument("--workers", type=_bounded_int(1, 16, "workers of a shrunk scenario"),
                   default=None, help="this many workers instead of the scenario's")
    _guard(p, guard_help)
    p.add_argument("--history", metavar="FILE", help=history_help)
    _store(p, _SIM_STORE_HELP)
    p.add_argument("--json", action="store_true", help=json_help)

    p = sub.add_parser("explore", help="explore fault schedules: exhaustive or random")
    p.add_argument("fm", metavar="FM_ID", help=fm_help)
    _guard(p, guard_help)
    p.add_argument("--mode", choices=("exhaustive", "random", "pct"), default="exhaustive",
                   help="every schedule within the bounds, or --runs seeded random ones, or "
                        "--runs PCT ones (probabilistic concurrency testing: a stated chance "
                        "per run of finding a bug of --depth) (default: exhaustive)")
    p.add_argument("--runs", type=_bounded_int(1, MAX_RUNS, "sampled schedules per exploration"),
                   default=None,
                   help=f"random and pct modes: schedules to run (default: 1000, at most {MAX_RUNS})")
    p.add_argument("--seed", type=_non_negative_int, default=0,
                   help="random and pct modes: seed of the first schedule (default: 0)")
    p.add_argument("--depth", type=_bounded_int(1, 5, "ordering constraints of the bug sought"),
                   default=2, help="pct mode: the bug depth PCT aims at (default: 2)")
    p.add_argument("--checkpoint", metavar="FILE", default=None,
                   help="keep the exploration's progress in FILE (a new path or an earlier "
                        "checkpoint of the same exploration, which it resumes); removed when done")
    p.add_argument("--max-faults", type=_non_negative_int, default=None,
                   help="faults per schedule (default: the scenario's bound)")
    p.add_argument("--workers",
                   type=_bounded_int(1, MAX_EXPLORE_WORKERS, "4 per core on this machine, at most 64"),
                   default=os.cpu_count() or 1,
                   help="processes for an exhaustive exploration (default: one per core); "
                        "the counts and the counterexample do not depend on it")
    p.add_argument("--all", action="store_true",
                   help="go on past the first violation and count every violating schedule "
                        "(by default exploration stops at the first, as model checkers do)")
    p.add_argument("--reduction", choices=("none", "symmetry", "full"), default="full",
                   help="skip equivalent schedules: full (symmetry and sleep sets, the default), "
                        "symmetry (idle workers interchangeable) or none")
    _store(p, _SIM_STORE_HELP)
    p.add_argument("--json", action="store_true", help=json_help)

    p = sub.add_parser("stress", help="real worker processes on a SQLite file or PostgreSQL, "
                                      "killed with SIGKILL")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--db", metavar="PATH", type=_db_path,
                       help="a new (or empty) SQLite file; it keeps the run's jobs, effects and history")
    _store(where, "a store URL: sqlite:PATH or postgresql://... (every lease decision "
                  "then uses the server's clock)")
    p.add_argument("--jobs", type=_positive_int, required=True, help="jobs to enqueue")
    p.add_argument("--workers", type=_positive_int, required=True, help="worker processes")
    p.add_argument("--kill-rate", type=_non_negative_float, default=0.0,
                   help="SIGKILLs per second at most, each aimed at a worker holding a lease; "
                        "two kills with no job finished between them are a lease apart (default: 0)")
    p.add_argument("--kills", type=_non_negative_int, default=0,
                   help="instead of a rate: exactly this many SIGKILLs, each at a seeded point "
                        "of the run's progress (jobs claimed), whatever the machine's speed")
    _guard(p, "off removes the idempotent commit boundary (default: on)")
    p.add_argument("--seed", type=_non_negative_int, default=0,
                   help="seed of the kill schedule (which worker, when); default: 0")
    p.add_argument("--json", action="store_true", help=json_help)

    # peers (#13): the crash experiment against the queues people run.
    p = sub.add_parser("peers", help="the crash experiment against Celery, RQ, huey, Dramatiq, "
                                     "procrastinate, pgqueuer and failfirst: every configuration "
                                     "under every fault that applies (servers must run)")
    p.add_argument("--jobs", type=_positive_int, default=12, help="jobs per run (default: 12)")
    p.add_argument("--seeds", type=_positive_int, default=2,
                   help="runs per configuration, seeds 0..N-1 (default: 2)")
    p.add_argument("--workers", type=_positive_int, default=2, help="worker processes (default: 2)")
    p.add_argument("--work-s", type=_non_negative_float, default=0.3,
                   help="seconds each job works (default: 0.3)")
    p.add_argument("--kills", type=_positive_int, default=1,
                   help="jobs targeted per run at kill@claimed and kill@effect (default: 1)")
    p.add_argument("--only", metavar="TEXT", help="only configurations whose name contains TEXT")
    p.add_argument("--faults", metavar="A,B", help="only these faults (default: every one; "
                                                    "kill@claimed, kill@effect, kill@backoff, "
                                                    "kill@prefetched, ...)")
    p.add_argument("--parallel", type=_positive_int, default=1,
                   help="runs side by side, each with its own names (default: 1)")
    p.add_argument("--full", action="store_true",
                   help="every cell, also those left out at CI size (a deploy fault's slow cells)")
    p.add_argument("--out", default="_build/peers/results.json", metavar="PATH",
                   help="the results file (default: _build/peers/results.json)")
    p.add_argument("--json", action="store_true", help=json_help)

    p = sub.add_parser("resume", help="finish an interrupted stress run: reap its leases, then "
                                      "work off what is left, exactly once (refuses a live run)")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--db", metavar="PATH", type=_db_path, help="the SQLite file of an earlier stress run")
    _store(where, "or the store URL of one (sqlite:PATH, postgresql://...)")
    p.add_argument("--workers", type=_positive_int, default=2, help="worker processes (default: 2)")
    p.add_argument("--json", action="store_true", help=json_help)

    p = sub.add_parser("new", help="scaffold a failure-mode bundle and its chapter (for contributors)")
    p.add_argument("name", metavar="NAME",
                   help="the failure mode as a snake_case name, e.g. lost_wakeup; the id is the next "
                        "free FM number")
    p.add_argument("--root", metavar="DIR", default=None,
                   help="the repository to write into (default: the checkout failfirst runs from)")
    p.add_argument("--json", action="store_true", help=json_help)

    p = sub.add_parser("check", help="judge a failfirst store with the checkers, in one snapshot "
                                     "(read-only: never creates, migrates or writes)")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--db", metavar="PATH", type=_db_path, help="a failfirst SQLite file")
    _store(where, "or a store URL (sqlite:PATH, postgresql://...)")
    p.add_argument("--json", action="store_true", help=json_help)
    return parser


class OutputError(RuntimeError):
    """The result could not be written (a full disk, a closed terminal): exit 1."""


def _write_out(text: str) -> None:
    try:
        print(text)
        sys.stdout.flush()
    except BrokenPipeError:
        raise  # the reader went away on purpose (`| head`): not an error
    except OSError as exc:
        raise OutputError(f"cannot write the output: {exc.strerror}") from None


def _emit(args: argparse.Namespace, payload: dict[str, Any], text: str) -> None:
    _write_out(json.dumps(payload, sort_keys=True) if args.json else text)


def _describe_run(result: RunResult) -> str:
    lines = [
        f"{result.scenario.id} {result.scenario.title}: guard {'on' if result.guard else 'off'}, "
        f"{len(result.events)} events, run ended {result.end_reason}",
        f"schedule {result.schedule}",
        f"digest   {result.digest}",
    ]
    if result.violations:
        lines.append(f"{plural(len(result.violations), 'violation')}:")
        lines.extend(f"  {v}" for v in result.violations)
    else:
        lines.append("no violations")
    return "\n".join(lines)


def _write_history(path: str | None, result: RunResult) -> None:
    if path is None:
        return
    try:
        with open(path, "w", encoding="utf-8") as out:
            history.write_jsonl(result.events, out)
    except OSError as exc:
        raise UsageError(f"--history {shown_path(path)}: {exc.strerror}") from None


def cmd_list(args: argparse.Namespace) -> None:
    """Each failure mode with every guardrail ``--guard off`` switches (the scenario's
    guardrail_names: the one source the book's catalogue and chapters use too)."""
    scenarios = catalogue.all_scenarios()
    rows = [{"id": s.id, "title": s.title, "guardrail": s.guardrail,
             "guardrails": list(s.guardrail_names), "invariants": list(s.invariants)}
            for s in scenarios]
    text = "\n".join(f"{s.id}  {s.title:<28} {','.join(s.invariants):<18} "
                     f"guard: {catalogue.guardrails_text(s)}" for s in scenarios)
    _write_out(json.dumps(rows) if args.json else text)


def cmd_run(args: argparse.Namespace) -> None:
    result = run_scenario(catalogue.load(args.fm), guard=args.guard == "on", seed=args.seed,
                          store_url=args.store)
    result.store.close()  # a PostgreSQL simulation schema is dropped here
    _write_history(args.history, result)
    _emit(args, result.to_json(), _describe_run(result))


def cmd_replay(args: argparse.Namespace) -> None:
    scenario = catalogue.load(args.fm)
    if args.jobs is not None and args.jobs[-1] > len(scenario.jobs):
        raise UsageError(f"--jobs: {scenario.id} has {len(scenario.jobs)} jobs")
    if args.jobs is not None or args.workers is not None:
        scenario = scenario.cut(args.jobs, args.workers)
    result = replay(scenario, args.schedule, guard=args.guard == "on", store_url=args.store)
    result.store.close()
    _write_history(args.history, result)
    _emit(args, result.to_json(), _describe_run(result))


def cmd_explore(args: argparse.Namespace) -> None:
    from failfirst.proofs.explorer import describe, explore_cli

    result = explore_cli(catalogue.load(args.fm), guard=args.guard == "on", mode=args.mode,
                         runs=args.runs, seed=args.seed, max_faults=args.max_faults,
                         stop_at_first=not args.all, workers=args.workers,
                         progress=not args.json and sys.stderr.isatty(), store_url=args.store,
                         reduction=args.reduction, checkpoint=args.checkpoint, depth=args.depth,
                         warn=lambda line: print(f"failfirst: warning: {line}", file=sys.stderr))
    _emit(args, result.to_json(), describe(result))


#: The real run under way, if any: an interruption's message depends on how far it got.
_RUN_STATUS: list[Any] = [None]


def _run_status(command: str) -> Any:
    from failfirst.realrun.driver import RunStatus

    _RUN_STATUS[0] = RunStatus(command=command)
    return _RUN_STATUS[0]


def _store_of(args: argparse.Namespace) -> str:
    """--db or --store (each checked by its type: never empty)."""
    return args.db if args.db is not None else args.store


def cmd_stress(args: argparse.Namespace) -> None:
    from failfirst.realrun.driver import stress
    from failfirst.realrun.verdict import describe

    result = stress(db=_store_of(args), jobs=args.jobs, workers=args.workers, kill_rate=args.kill_rate,
                    guard=args.guard == "on", seed=args.seed, kills=args.kills,
                    status=_run_status("stress"))
    _emit(args, result, describe(result))


def cmd_peers(args: argparse.Namespace) -> None:
    from failfirst.peers.matrix import run_matrix

    say = None if args.json else (lambda line: print(line, flush=True))
    rows = run_matrix(args.out, jobs=args.jobs, seeds=args.seeds, workers=args.workers,
                      work_s=args.work_s, kills=args.kills, only=args.only, fault_names=args.faults,
                      full=args.full, parallel=args.parallel, progress=say)
    if args.json:
        print(json.dumps(rows, sort_keys=True))
    else:
        print(f"{len(rows)} runs written to {args.out}")


def cmd_resume(args: argparse.Namespace) -> None:
    from failfirst.realrun.driver import resume
    from failfirst.realrun.verdict import describe_check

    result = resume(_store_of(args), workers=args.workers, status=_run_status("resume"))
    _emit(args, result, describe_check(result, "resume"))


def cmd_check(args: argparse.Namespace) -> None:
    from failfirst.realrun.verdict import check, describe_check

    result = check(_store_of(args))
    _emit(args, result, describe_check(result, "check"))


def cmd_new(args: argparse.Namespace) -> None:
    from pathlib import Path

    from failfirst.sim.scaffold import scaffold

    made = scaffold(args.name, Path(args.root) if args.root is not None else None)
    root = made.bundle.parent.parent
    files = [f"failure_modes/{made.bundle.name}/{f}" for f in made.files]
    chapter = f"book/{made.chapter.name}"
    number = int(made.fm[3:])
    text = "\n".join([
        f"{made.fm}: made failure_modes/{made.bundle.name}/ and {chapter} in {shown_path(str(root))}",
        *(f"  {f}" for f in [*files, chapter]),
        "next: replace the stand-in scenario and the TODOs (book/contributing.md), then",
        f"  make test-fm{number} test-fm{number}-fix test-fm{number}-recover",
        f"  .venv/bin/pytest {chapter}",
    ])
    _emit(args, {"fm": made.fm, "bundle": f"failure_modes/{made.bundle.name}", "chapter": chapter,
                 "files": [*files, chapter]}, text)


COMMANDS = {"new": cmd_new, "list": cmd_list, "run": cmd_run, "replay": cmd_replay, "explore": cmd_explore,
            "stress": cmd_stress, "resume": cmd_resume, "check": cmd_check, "peers": cmd_peers}


def _bad_input_types() -> tuple[type[BaseException], ...]:
    """The exceptions that mean bad input: each is raised at the boundary where the
    input is checked, before anything is written. A ValueError from anywhere else is a
    bug and must not be reported as the user's mistake."""
    from failfirst.peers.matrix import PeersInputError
    from failfirst.proofs.explorer import BoundError
    from failfirst.realrun.driver import RunInputError
    from failfirst.sim.scaffold import ScaffoldError
    from failfirst.store import StoreError

    return (UsageError, catalogue.UnknownFailureMode, ScheduleError, StoreError, BoundError,
            RunInputError, PeersInputError, ScaffoldError)


def _on_signal(signum: int, frame: object) -> None:
    if os.getpid() != _MAIN_PID[0]:
        os._exit(128 + signum)  # a forked explorer worker: the parent reports and cleans up
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise Terminated


_MAIN_PID = [0]


def main(argv: Sequence[str] | None = None) -> int:
    _MAIN_PID[0] = os.getpid()
    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    for stream in (sys.stdout, sys.stderr):  # a result is never lost to an encoding
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    args = None
    _RUN_STATUS[0] = None
    try:
        args = build_parser().parse_args(argv)
        COMMANDS[args.command](args)
    except StoreUnavailable as exc:  # the store stopped answering: not the user's input
        _one_line_error(exc)
        return EXIT_FAILED
    except _bad_input_types() as exc:
        _one_line_error(exc)
        return EXIT_USAGE
    except BrokenPipeError:  # `failfirst list | head`: the reader has what it wanted
        _silence_stdout()
        return 0
    except RuntimeError as exc:  # the experiment broke (a stress run timed out), or the output
        if isinstance(exc, OutputError):  # `failfirst list > /dev/full`
            _silence_stdout()
        _one_line_error(exc)
        return EXIT_FAILED
    except (KeyboardInterrupt, Terminated) as exc:
        _silence_stdout()
        what = "interrupted" if isinstance(exc, KeyboardInterrupt) else "terminated"
        print(f"failfirst: {what}{_interrupted_where(args)}", file=sys.stderr)
        return EXIT_INTERRUPTED if isinstance(exc, KeyboardInterrupt) else EXIT_TERMINATED
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def _interrupted_where(args: argparse.Namespace | None) -> str:
    """What an interrupted real run left, and the command that finishes it; for an
    exploration with a checkpoint, that the same command resumes it."""
    kept = getattr(args, "checkpoint", None)
    if kept and args is not None and args.command == "explore":
        return f"; {shown_path(kept)} keeps its progress (the same command resumes it)"
    status = _RUN_STATUS[0]
    if args is None or status is None:
        return ""
    from failfirst.realrun import where

    db = where.resolved(args.db if args.db is not None else args.store)
    if not status.claimed:
        return f"; nothing was enqueued: {where.shown(db)} holds no part of this run"
    return f"; {where.shown(db)} keeps its jobs ({where.resume_command(db)} finishes them)"


def _silence_stdout() -> None:
    """Drop output that can no longer be written, so the interpreter's own flush at exit
    does not fail again with a traceback."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # not a real file (pytest's capture)
        pass


def _one_line_error(exc: BaseException) -> None:
    """The first line of the reason (a broken run's message may carry a log after it)."""
    message = str(exc).splitlines()[0] if str(exc).strip() else type(exc).__name__
    print(f"failfirst: error: {message}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())

"""The ``failfirst`` command line. This module owns the CLI contract.

Bad input exits 2 with a one-line reason on stderr. An experiment that finds a
violation still exits 0: finding it is its job.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from failfirst import catalogue, history
from failfirst.choices import ScheduleError
from failfirst.runner import RunResult, replay, run_scenario

EXIT_USAGE = 2
#: The experiment could not complete (not bad input): one line on stderr too.
EXIT_FAILED = 1


class UsageError(Exception):
    """Bad input from the user: reported in one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, not argparse's usage block
        raise UsageError(message)


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0: {text!r}")
    return value


def _positive_int(text: str) -> int:
    value = _non_negative_int(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be >= 1")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0: {text!r}")
    return value


def _guard(parser: argparse.ArgumentParser, help_text: str) -> None:
    parser.add_argument("--guard", choices=("on", "off"), default="on", help=help_text)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="failfirst", description="Deterministic failure experiments for job processing.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("list", help="the failure modes in the catalogue")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("run", help="one seeded run of a failure mode's scenario")
    p.add_argument("fm", metavar="FM_ID")
    _guard(p, "the guardrail this failure mode studies (default: on)")
    p.add_argument("--seed", type=_non_negative_int, default=0)
    p.add_argument("--history", metavar="FILE", help="write the history as JSON Lines")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("replay", help="re-run one schedule exactly")
    p.add_argument("fm", metavar="FM_ID")
    p.add_argument("--schedule", required=True, metavar="S")
    _guard(p, "the guardrail this failure mode studies (default: on)")
    p.add_argument("--history", metavar="FILE", help="write the history as JSON Lines")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("explore", help="explore fault schedules: exhaustive or random")
    p.add_argument("fm", metavar="FM_ID")
    _guard(p, "the guardrail this failure mode studies (default: on)")
    p.add_argument("--mode", choices=("exhaustive", "random"), default="exhaustive")
    p.add_argument("--runs", type=_positive_int, default=None, help="random mode: schedules to run")
    p.add_argument("--seed", type=_non_negative_int, default=0)
    p.add_argument("--max-faults", type=_non_negative_int, default=None)
    p.add_argument("--workers", type=_positive_int, default=os.cpu_count() or 1,
                   help="processes for an exhaustive exploration (default: one per core); "
                        "the counts and the counterexample do not depend on it")
    p.add_argument("--all", action="store_true",
                   help="go on past the first violation and count every violating schedule "
                        "(by default exploration stops at the first, as model checkers do)")
    p.add_argument("--reduction", choices=("none", "symmetry", "full"), default="full",
                   help="skip equivalent schedules: full (symmetry and sleep sets, the default), "
                        "symmetry (idle workers interchangeable) or none")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("stress", help="real worker processes on a SQLite file, killed with SIGKILL")
    p.add_argument("--db", required=True, metavar="PATH")
    p.add_argument("--jobs", type=_positive_int, required=True)
    p.add_argument("--workers", type=_positive_int, required=True)
    p.add_argument("--kill-rate", type=_non_negative_float, default=0.0, help="SIGKILLs per second")
    _guard(p, "off removes the idempotent commit boundary (default: on)")
    p.add_argument("--seed", type=_non_negative_int, default=0)
    p.add_argument("--json", action="store_true")
    return parser


def _emit(args: argparse.Namespace, payload: dict[str, Any], text: str) -> None:
    print(json.dumps(payload, sort_keys=True) if args.json else text)


def _describe_run(result: RunResult) -> str:
    lines = [
        f"{result.scenario.id} {result.scenario.title}: guard {'on' if result.guard else 'off'}, "
        f"{len(result.events)} events, run ended {result.end_reason}",
        f"schedule {result.schedule}",
        f"digest   {result.digest}",
    ]
    if result.violations:
        lines.append(f"{len(result.violations)} violation(s):")
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
        raise UsageError(f"--history {path}: {exc.strerror}") from None


def cmd_list(args: argparse.Namespace) -> None:
    rows = [{"id": s.id, "title": s.title, "guardrail": s.guardrail, "invariants": list(s.invariants)}
            for s in catalogue.all_scenarios()]
    text = "\n".join(f"{r['id']}  {r['title']:<28} {','.join(r['invariants']):<18} guard: {r['guardrail']}"
                     for r in rows)
    print(json.dumps(rows) if args.json else text)


def cmd_run(args: argparse.Namespace) -> None:
    result = run_scenario(catalogue.load(args.fm), guard=args.guard == "on", seed=args.seed)
    _write_history(args.history, result)
    _emit(args, result.to_json(), _describe_run(result))


def cmd_replay(args: argparse.Namespace) -> None:
    result = replay(catalogue.load(args.fm), args.schedule, guard=args.guard == "on")
    _write_history(args.history, result)
    _emit(args, result.to_json(), _describe_run(result))


def cmd_explore(args: argparse.Namespace) -> None:
    from failfirst.explore import describe, explore_cli

    result = explore_cli(catalogue.load(args.fm), guard=args.guard == "on", mode=args.mode,
                         runs=args.runs, seed=args.seed, max_faults=args.max_faults,
                         stop_at_first=not args.all, workers=args.workers,
                         progress=not args.json and sys.stderr.isatty(), reduction=args.reduction)
    _emit(args, result.to_json(), describe(result))


def cmd_stress(args: argparse.Namespace) -> None:
    from failfirst.stress import describe, stress

    result = stress(db=args.db, jobs=args.jobs, workers=args.workers, kill_rate=args.kill_rate,
                    guard=args.guard == "on", seed=args.seed)
    _emit(args, result, describe(result))


COMMANDS = {"list": cmd_list, "run": cmd_run, "replay": cmd_replay, "explore": cmd_explore,
            "stress": cmd_stress}


def main(argv: Sequence[str] | None = None) -> int:
    from failfirst.store import StoreError

    try:
        args = build_parser().parse_args(argv)
        COMMANDS[args.command](args)
    except (UsageError, catalogue.UnknownFailureMode, ScheduleError, StoreError, ValueError) as exc:
        _one_line_error(exc)
        return EXIT_USAGE
    except BrokenPipeError:  # `failfirst list | head`
        return 0
    except RuntimeError as exc:  # the experiment itself broke (say, a stress run timed out)
        _one_line_error(exc)
        return EXIT_FAILED
    return 0


def _one_line_error(exc: BaseException) -> None:
    message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    print(f"failfirst: error: {message}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())

"""The ``neurocc`` command line (also ``python -m neurocc``); subcommands follow the Contract in
the architecture notes and call the Python API in :mod:`neurocc`, so both behave alike.

Exit status: 0 success; 1 a user-facing error (a :class:`~neurocc.errors.NeuroccError`: bad
file, unknown target, failed validation), printed as one paragraph; 2 a usage error or a feature
not in this version; 3 an internal error (a bug: rerun with ``--debug`` and report it).

This module holds the subcommand table, the parser assembly, ``main`` and the mapping of
exceptions to exit statuses; the arguments live in :mod:`neurocc.cli_args`, the handlers in
:mod:`neurocc.cli_commands`.
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Callable, Sequence

import neurocc
from neurocc import NeuroccError
from neurocc.cli_args import add_arguments, common_options, model_options
from neurocc.cli_commands import (
    cmd_compile,
    cmd_deploy,
    cmd_evaluate,
    cmd_export_nir,
    cmd_inspect,
    cmd_plan,
    cmd_quickstart,
    cmd_report,
    cmd_run,
    cmd_targets,
    cmd_validate,
    format_targets,
)

__all__ = ["COMMANDS", "INTERNAL", "build_parser", "format_targets", "main"]

Handler = Callable[[argparse.Namespace], int]


# ----- parser -----------------------------------------------------------------------------------
COMMANDS: list[tuple[str, Handler, str, bool]] = [  # name, handler, help, takes a MODEL
    ("targets", cmd_targets, "list the chips neurocc knows (targets.yaml)", False),
    ("inspect", cmd_inspect, "print a model's graph: nodes, shapes, parameters, neurons, synapses", True),
    ("export-nir", cmd_export_nir, "convert a model to a NIR file", True),
    ("compile", cmd_compile, "compile a model for a target into an artifact directory", True),
    ("run", cmd_run, "run an artifact on a backend", False),
    ("validate", cmd_validate, "compare backends with their reference; write validation.json", False),
    ("evaluate", cmd_evaluate, "accuracy of an artifact on labelled data", False),
    ("plan", cmd_plan, "how a model fits each target (cores, chips, memory, energy)", True),
    ("deploy", cmd_deploy, "bundle an edge-cpu artifact for another machine", False),
    ("report", cmd_report, "summarise an artifact and its validation", False),
    ("quickstart", cmd_quickstart, ("train a digits network, compile it for every target, run and validate "
                                    "every backend, print the accuracy table and write a report"), False),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="neurocc", parents=[common_options(sub=False)],
        description="Compile trained neural networks for neuromorphic chips and edge CPUs, and "
                    "check that the result computes what was trained.",
        epilog="Start with `neurocc quickstart`. Docs: docs/user-guide.md")
    parser.add_argument("--version", action="version", version=f"neurocc {neurocc.__version__}")
    subs = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, handler, help_text, takes_model in COMMANDS:
        parents = [common_options(sub=True)] + ([model_options()] if takes_model else [])
        p = subs.add_parser(name, parents=parents, help=help_text, description=help_text)
        add_arguments(name, p)
        p.set_defaults(func=handler)
    return parser


# ----- entry point ------------------------------------------------------------------------------
INTERNAL = ("internal error in neurocc: {kind}: {msg}\nThis is a bug in neurocc, not in your input. "
            "Rerun the same command with --debug for the traceback and report it.")


def _one_line_warning(message: Warning | str, category: type[Warning], *_: object, **__: object) -> str:
    """Warnings as one line ("neurocc: warning: ..."), not Python's file:line + source line."""
    return f"neurocc: warning: {message}\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (see the module docstring)."""
    from neurocc._signals import terminate_cleanly

    args = build_parser().parse_args(argv)
    warnings.formatwarning = _one_line_warning
    with terminate_cleanly():  # SIGTERM cleans up like Ctrl-C: temporary outputs are removed
        return _dispatch(args)


def _dispatch(args: argparse.Namespace) -> int:
    """Run the subcommand; map exceptions to exit statuses (see the module docstring)."""
    try:
        return int(args.func(args) or 0)
    except NeuroccError as err:
        if args.debug:
            raise
        print(f"neurocc {args.command}: {err}", file=sys.stderr)
        return err.exit_code
    except ModuleNotFoundError as err:
        if args.debug:
            raise
        name = err.name or "?"
        if name == "neurocc" or name.startswith("neurocc."):
            print(f"neurocc {args.command}: this command is not available yet in this version of "
                  f"neurocc (module {name} is not part of it).\nFix: the installation is incomplete: "
                  "run `make setup` (or `pip install -e .`) in the neurocc checkout.", file=sys.stderr)
            return 2
        print(f"neurocc {args.command}: the Python package '{name}' is not installed, and this "
              "command needs it.\nFix: run the set-up (`make demo` or scripts/setup.sh) or install "
              "it into this environment.", file=sys.stderr)
        return 1
    except KeyboardInterrupt as err:
        from neurocc._signals import exit_code

        code = exit_code(err)
        print("terminated" if code == 143 else "interrupted", file=sys.stderr)
        return code
    except BrokenPipeError:  # output piped into e.g. `head`, which stopped reading: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as err:  # (the one place that turns bugs into a short message)
        if args.debug:
            raise
        print(INTERNAL.format(kind=type(err).__name__, msg=err), file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())

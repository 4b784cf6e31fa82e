"""What the training command lines share: argument parsing, one-line errors, exit statuses."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

from streamgenre.errors import StreamgenreError

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def run_cli(
    prog: str,
    parser: argparse.ArgumentParser,
    job: Callable[[argparse.Namespace, list[str]], dict[str, Any]],
    summary: Callable[[argparse.Namespace, dict[str, Any]], str],
    argv: Sequence[str] | None = None,
    on_interrupt: str = "interrupted",
) -> int:
    """Parse ``argv``, run ``job(args, argv)`` and print ``summary(args, result)``.

    A :class:`~streamgenre.errors.StreamgenreError` becomes ``"PROG: error: ..."`` on stderr and
    exit status 2; Ctrl-C prints ``on_interrupt`` and exits 130. Returns the exit status.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        result = job(args, argv)
    except StreamgenreError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{prog}: {on_interrupt}", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(summary(args, result))
    return 0

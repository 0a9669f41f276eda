"""Messages from the library go through ``logging``, under the ``econash`` logger, never straight to stderr.

A notebook or a program that uses econash as a library can then silence them, raise their level or
send them elsewhere with the standard tools (``logging.getLogger("econash.plugins").setLevel(...)``).
Without any logging configuration Python still shows warnings on stderr (its last-resort handler),
so nothing a user should read is lost by default.

The command line installs ``install_cli_handler``: it prints each record as econash always has,
``econash: warning: ...``, ``econash: note: ...`` or ``econash: trace: ...``. A record's word is its
``label`` (passed with ``extra``) or else its level name: a note is a warning a user should see,
labelled ``note`` because nothing went wrong.

Loggers: ``econash.plugins`` (plugins that fail to load, observers that raise), ``econash.trace``
(``ECONASH_TRACE_PLUGINS=1``: one record per hook call), ``econash.runner`` (resume notes).
"""

from __future__ import annotations

import logging
import sys
from contextlib import contextmanager
from typing import Iterator

ROOT = "econash"


def get_logger(name: str) -> logging.Logger:
    """The logger ``econash.<name>``."""
    return logging.getLogger(f"{ROOT}.{name}")


def note(logger: logging.Logger, message: str) -> None:
    """Log a note: shown like a warning (it is something to read), printed ``econash: note: ...``."""
    logger.warning(message, extra={"label": "note"})


class CliFormatter(logging.Formatter):
    """``econash: <label>: <message>``, the format econash's command line has always printed."""

    def format(self, record: logging.LogRecord) -> str:
        label = getattr(record, "label", None) or record.levelname.lower()
        return f"econash: {label}: {record.getMessage()}"


class CurrentStderrHandler(logging.Handler):
    """Writes to whatever ``sys.stderr`` is when a record arrives, not the stream of the moment the
    handler was made: click's test runner and pytest replace ``sys.stderr`` while a command runs."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
            sys.stderr.flush()
        except Exception:  # logging's contract: a handler never raises into the code that logged
            self.handleError(record)


def cli_handler() -> logging.Handler:
    """A handler that prints records as the command line does."""
    handler = CurrentStderrHandler()
    handler.setFormatter(CliFormatter())
    return handler


def install_cli_handler() -> logging.Handler | None:
    """Print the ``econash`` loggers' records on stderr in the command line's format; returns the
    handler it added, None when one was there already."""
    logger = logging.getLogger(ROOT)
    if any(isinstance(handler, CurrentStderrHandler) for handler in logger.handlers):
        return None
    handler = cli_handler()
    logger.addHandler(handler)
    return handler


@contextmanager
def cli_logging() -> Iterator[None]:
    """The command line's handler while one command runs, removed after it unless it was there
    before (``econash`` the program installs it for good): a command run in process, from a test or
    a notebook, prints its warnings as the program does and leaves logging as it found it."""
    added = install_cli_handler()
    try:
        yield
    finally:
        if added is not None:
            logging.getLogger(ROOT).removeHandler(added)


def show_trace() -> logging.Logger:
    """The ``econash.trace`` logger, made to print: ``ECONASH_TRACE_PLUGINS=1`` asks for every hook
    call on stderr, in the command line and in a notebook alike. Its records do not also reach the
    ``econash`` logger's handlers (they would print twice)."""
    logger = get_logger("trace")
    logger.setLevel(logging.DEBUG)
    if not any(isinstance(handler, CurrentStderrHandler) for handler in logger.handlers):
        logger.addHandler(cli_handler())
    logger.propagate = False
    return logger

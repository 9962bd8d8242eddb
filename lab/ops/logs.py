"""Logging for every `lab` entry point: one format, quiet libraries, and logs that rotate.

A supervised process writes to its log file (`--log-file`, given by the supervisor); past
`LAB_LOG_MAX_BYTES` the file is renamed to `<name>.1` (the one older file kept) and a new one
begun. Standard output and error follow the new file too, so nothing a process prints (a
traceback of a crash included) goes to a file that no longer grows.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Libraries that log expected trouble (a refused connection while a service starts) as errors.
NOISY = ("pika", "elastic_transport", "httpx", "httpcore", "urllib3")


class RotatingProcessLog(logging.handlers.RotatingFileHandler):
    """A rotating log file that also carries the process's stdout and stderr."""

    def __init__(self, path: Path, max_bytes: int):
        super().__init__(path, maxBytes=max_bytes, backupCount=1, encoding="utf-8")
        self._redirect()

    def doRollover(self) -> None:  # noqa: N802 - logging's name
        super().doRollover()
        self._redirect()

    def _redirect(self) -> None:
        if self.stream is None:
            return
        sys.stdout.flush()
        sys.stderr.flush()
        for fd in (1, 2):
            os.dup2(self.stream.fileno(), fd)


class OneLine(logging.Formatter):
    """Each record is one line: a message that carries text from outside (a job's error, a
    payload's key, a message body) has its line breaks and control characters escaped, so it
    cannot forge a line of the log. A traceback still follows on its own lines."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        record.message = one_line(record.message)
        return super().formatMessage(record)


def one_line(text: str) -> str:
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def configure(verbose: bool = False, log_file: Path | None = None, max_bytes: int = 0) -> None:
    level = logging.DEBUG if verbose else logging.INFO
    handlers: list[logging.Handler] = []
    if log_file is not None and max_bytes > 0:
        handlers.append(RotatingProcessLog(log_file, max_bytes))
    logging.basicConfig(level=level, format=FORMAT, handlers=handlers or None, force=True)
    for handler in logging.getLogger().handlers:
        handler.setFormatter(OneLine(FORMAT))
    for name in NOISY:
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else logging.CRITICAL)

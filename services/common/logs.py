"""Logging of every `journeys` process: one line per record, to stderr or to a file rotated by size, and
repeated warnings limited to one line per interval.

A 30 s broker outage wrote thousands of identical ERROR lines (librdkafka's own connection errors and our
retries), and `journeys up` appended every worker's output to one file forever. Rotation happens in the
process that writes (the standard library's RotatingFileHandler), and file descriptors 1 and 2 follow each
new file, so what does not pass through `logging` (a traceback at exit, a native library's stderr) lands in
the current file too, never in a renamed one that is about to be deleted.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from collections.abc import Callable
from logging.handlers import RotatingFileHandler

from pydantic import ValidationError

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# ``extra=KEEP``: never held back here. For lines limited by their caller already (RateLimitedLog) and for
# events each worth a line (a restart).
KEEP = {"keep": True}
_DIGITS = re.compile(r"\d+")
MAX_KEYS = 1000


class RepeatLimiter(logging.Filter):
    """At most one line per ``every_s`` per distinct message (numbers ignored) of a warning or worse, and of
    any librdkafka line; the next line that passes says how many were held back."""

    def __init__(self, every_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.every_s = every_s
        self._clock = clock
        self._last: dict[tuple[str, int, str], float] = {}
        self._held: dict[tuple[str, int, str], int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "keep", False):
            return True
        if record.levelno < logging.WARNING and not record.name.startswith("librdkafka"):
            return True
        message = record.getMessage()
        key = (record.name, record.levelno, _DIGITS.sub("#", message)[:300])
        now = self._clock()
        if now - self._last.get(key, -1e18) < self.every_s:
            self._held[key] = self._held.get(key, 0) + 1
            return False
        if len(self._last) >= MAX_KEYS:  # bounded memory; forgetting only allows one more line
            self._last.clear()
        self._last[key] = now
        held = self._held.pop(key, 0)
        if held:
            record.msg = f"{message} ({held} more like it in the last {self.every_s:.0f} s)"
            record.args = None
        return True


class FollowingRotatingFileHandler(RotatingFileHandler):
    """A RotatingFileHandler whose file is also the process's stdout and stderr, before and after a roll."""

    def __init__(self, path: str, max_bytes: int, backups: int) -> None:
        super().__init__(path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
        self._follow()

    def doRollover(self) -> None:
        super().doRollover()
        self._follow()

    def _follow(self) -> None:
        if self.stream is None:
            return
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        for fd in (1, 2):
            os.dup2(self.stream.fileno(), fd)


def configure(*, to_file: bool) -> None:
    """Root logging for this process from JOURNEYS_LOG_*; JOURNEYS_LOG_FILE only when ``to_file`` (the
    long-running services: `up`, `status` and the simulator keep talking to the terminal). Stderr when the
    settings are bad: the command itself then reports the bad setting."""
    from services.common.log_settings import LogSettings

    try:
        settings: LogSettings | None = LogSettings()
    except ValidationError:
        settings = None
    root = logging.getLogger()
    ours = [h for h in root.handlers if getattr(h, "journeys", False)]
    handler: logging.Handler
    if to_file and settings is not None and settings.log_file:
        os.makedirs(os.path.dirname(os.path.abspath(settings.log_file)), exist_ok=True)
        handler = FollowingRotatingFileHandler(
            settings.log_file, settings.log_max_bytes, settings.log_backups
        )
    elif len(ours) == len(root.handlers):
        handler = logging.StreamHandler()
    else:
        return  # logging set up by someone else (a test runner), as logging.basicConfig would leave it
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(RepeatLimiter(settings.log_repeat_s if settings is not None else 20.0))
    setattr(handler, "journeys", True)  # noqa: B010 (marks the handler this module installed)
    for old in ours:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    try:
        root.setLevel(settings.log_level.upper() if settings is not None else "INFO")
    except ValueError:  # an unknown level name: the services say so when they read their settings
        root.setLevel("INFO")

"""Where a `journeys` process logs (read before the command's own settings, by services.common.logs)."""

from __future__ import annotations

from services.common.settings import CommonSettings, env


class LogSettings(CommonSettings):
    log_file: str = env(
        "JOURNEYS_LOG_FILE",
        "Log to this file, rotated by size, instead of stderr (`journeys up` sets <state>/logs/<name>.log).",
        default="",
    )
    log_max_bytes: int = env(
        "JOURNEYS_LOG_MAX_BYTES", "Size at which JOURNEYS_LOG_FILE is rotated.", default=10_000_000
    )
    log_backups: int = env(
        "JOURNEYS_LOG_BACKUPS", "Rotated log files kept (<file>.1 ... <file>.N).", default=5
    )
    log_repeat_s: float = env(
        "JOURNEYS_LOG_REPEAT_INTERVAL",
        "Seconds between two lines of the same warning/error (or Kafka client line); repeats in between "
        "are counted, not written.",
        default=20.0,
    )

"""What a run prints on the console: one line per finished step with its seconds, the warnings and errors the
steps log (file and column, failed expectation and counts), nothing else. Dagster's engine events (step
starts, outputs, "Dependencies ... Not executing" for every step after a failure) and dbt's own lines stay in
the run's event log (`make dev` -> Runs) and in dbt's log beside the warehouse.

C360_LOG_LEVEL=debug prints everything, as Dagster's own console logger does.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import dagster as dg

LOG_LEVEL_VARIABLE = "C360_LOG_LEVEL"
MESSAGE_CHARACTERS = 600  # a long message (a list of failed expectations) is cut here on the console
# Not news on the console: dagster-dbt's note that a singular dbt test with several parents is an observation,
# and the line each step after a failure logs.
QUIET_MESSAGES = (
    "instead of an `AssetCheckResult` for dbt test",
    "Dependencies for step",  # every step after a failure: the failure itself is what matters
)
QUIET_STEPS = ("freshness_check_",)  # a freshness check that passes (a warning is still printed)


def debug_logging() -> bool:
    """C360_LOG_LEVEL=debug: everything on the console (read when a run starts, not at import)."""
    return os.environ.get(LOG_LEVEL_VARIABLE, "").strip().lower() == "debug"


class ConciseFormatter(logging.Formatter):
    """A Dagster log record as one short line, or None when it is not news for the console."""

    def line(self, record: logging.LogRecord) -> str | None:
        meta = getattr(record, "dagster_meta", {}) or {}
        event = meta.get("dagster_event")
        step = meta.get("step_key") or ""
        if event is not None:
            if event.event_type_value == "STEP_SUCCESS":
                if step.startswith(QUIET_STEPS):
                    return None
                seconds = event.event_specific_data.duration_ms / 1000
                return f"  ok  {step:<52}{seconds:7.1f} s"
            if event.event_type_value == "STEP_FAILURE":
                error = event.event_specific_data.error
                return f"  FAILED  {step}: {error_text(error) if error else _short(str(meta.get('orig_message')))}"
            return None
        if record.levelno < logging.WARNING:
            return None
        message = str(meta.get("orig_message") or record.getMessage())
        if any(quiet in message for quiet in QUIET_MESSAGES):
            return None
        label = "error" if record.levelno >= logging.ERROR else "note"
        return f"  {label}  {step}: {_short(message)}"


def error_text(error: Any, characters: int = MESSAGE_CHARACTERS) -> str:
    """A step's error as one line: the exception the step raised (not Dagster's wrapper of it), Dagster's class
    prefix off, whitespace folded, cut at `characters`."""
    while getattr(error, "cls_name", None) == "DagsterExecutionStepExecutionError" and getattr(
        error, "cause", None
    ):
        error = error.cause
    message = getattr(error, "message", str(error)).strip()
    for prefix in ("dagster._core.definitions.events.Failure: ", "dagster._core.errors."):
        message = message.removeprefix(prefix)
    return _short(message, characters)


def _short(message: str, characters: int = MESSAGE_CHARACTERS) -> str:
    text = " ".join(message.split())
    return text if len(text) <= characters else text[: characters - 1] + "…"


class ConciseHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.formatter_ = ConciseFormatter()
        self.stream = sys.__stdout__  # dbt's lines are redirected off sys.stdout during dbt steps

    def emit(self, record: logging.LogRecord) -> None:
        line = self.formatter_.line(record)
        if line is not None:
            stream = self.stream or sys.stderr
            stream.write(line + "\n")
            stream.flush()


@dg.logger(
    config_schema=dg.colored_console_logger.config_schema,
    description="customer360's console: a line per finished step, the warnings and errors of steps.",
)
def concise_console(init_context: dg.InitLoggerContext) -> logging.Logger:
    if debug_logging():
        return dg.colored_console_logger.logger_fn(init_context)
    logger = logging.Logger("customer360", level=logging.DEBUG)
    logger.addHandler(ConciseHandler())
    return logger

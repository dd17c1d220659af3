"""Where the ``plumasync`` logger goes on the command line: stderr (-q, -v, -vv) and ``--log-file``."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from rich.console import Console

__all__ = ["apply_verbosity", "quiet_below", "setup_logging"]

_LOGGERS = ("plumasync", "uvicorn")


class GlobalOptions(Protocol):
    """What logging needs of the command line's options (``_common.GlobalOptions`` has it): no import back."""

    verbose: int
    quiet: bool
    log_file: Path | None
    err: Console

    def scrub(self, text: str) -> str:
        """``text`` with the password masked."""
        ...


def stderr_level(verbose: int, quiet: bool) -> int:
    """-vv: DEBUG · -v: INFO · default: WARNING · -q: ERROR (-v wins over -q)."""
    if verbose >= 2:
        return logging.DEBUG
    if verbose:
        return logging.INFO
    return logging.ERROR if quiet else logging.WARNING


class ConsoleHandler(logging.Handler):
    """Log records printed through a rich console, so that they land above a live progress display."""

    def __init__(self, opts: GlobalOptions) -> None:
        super().__init__()
        self.opts = opts
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.opts.scrub(self.format(record))
            self.opts.err.print(text, markup=False, highlight=False, soft_wrap=True, style="dim")
        except Exception:
            self.handleError(record)


class ScrubbedFileHandler(logging.FileHandler):
    """``--log-file``: appended, timestamped, with the password masked like every other output."""

    def __init__(self, path: Path, opts: GlobalOptions) -> None:
        super().__init__(path, mode="a", encoding="utf-8", delay=True)
        self.opts = opts
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))

    def format(self, record: logging.LogRecord) -> str:
        return self.opts.scrub(super().format(record))


def _handlers(opts: GlobalOptions) -> list[logging.Handler]:
    logger = logging.getLogger("plumasync")
    return [h for h in logger.handlers if getattr(h, "opts", None) is opts]


def _settle(opts: GlobalOptions) -> None:
    """The logger passes what its most talkative handler wants; each handler filters for itself."""
    levels = [h.level for h in _handlers(opts)]
    logging.getLogger("plumasync").setLevel(min(levels) if levels else logging.WARNING)


def setup_logging(opts: GlobalOptions) -> Callable[[], None]:
    """Send the ``plumasync`` logger to stderr (WARNING; -v INFO; -vv DEBUG; -q ERROR) and, with
    ``--log-file``, to that file (INFO; DEBUG with -vv).

    Returns a function that puts the loggers back as they were (the CLI can run inside a test process).
    """
    logger = logging.getLogger("plumasync")
    saved = {name: logging.getLogger(name).level for name in _LOGGERS}
    console = ConsoleHandler(opts)
    console.setLevel(stderr_level(opts.verbose, opts.quiet))
    added: list[logging.Handler] = [console]
    if opts.log_file is not None:
        to_file = ScrubbedFileHandler(opts.log_file, opts)
        to_file.setLevel(logging.DEBUG if opts.verbose >= 2 else logging.INFO)
        added.append(to_file)
    for handler in added:
        logger.addHandler(handler)
    _settle(opts)

    def restore() -> None:
        for handler in added:
            logger.removeHandler(handler)
            handler.close()
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)

    return restore


def apply_verbosity(opts: GlobalOptions) -> None:
    """Follow a -v/-q given after the command name (``plumasync harvest ... -v``)."""
    for handler in _handlers(opts):
        if isinstance(handler, ConsoleHandler):
            handler.setLevel(stderr_level(opts.verbose, opts.quiet))
        elif opts.verbose >= 2:
            handler.setLevel(logging.DEBUG)
    _settle(opts)


def quiet_below(opts: GlobalOptions, level: int) -> None:
    """Show on stderr only records of ``level`` and above, unless -v asked for more (the log file keeps
    everything it was asked for)."""
    if opts.verbose:
        return
    for handler in _handlers(opts):
        if isinstance(handler, ConsoleHandler):
            handler.setLevel(max(handler.level, level))
    _settle(opts)

"""The command line's default store: one SQLite file in the user's state directory.

Each CLI run is a new process.  With an in-memory store every run would authenticate again (Plum allows
15 authentications per 15 minutes: the 16th command of a window would wait) and would not know what the
previous runs spent.  So without ``--store`` the CLI keeps the budget and the shared temporary
credentials in ``<user state dir>/plumasync/store.db`` (platformdirs: ``$XDG_STATE_HOME/plumasync`` or
``~/.local/state/plumasync`` on Linux), folder 0700 and file 0600, since it holds credentials.
``--store memory`` opts out.  The library itself stays in memory unless asked.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

from ..errors import ConfigurationError

__all__ = ["DEFAULT_STORE_NAME", "default_store_path", "prepare_default_store"]

DEFAULT_STORE_NAME = "store.db"


def default_store_path() -> Path:
    """Where the CLI keeps its store when ``--store`` is not given (nothing is created here)."""
    return Path(platformdirs.user_state_dir("plumasync", appauthor=False)) / DEFAULT_STORE_NAME


def prepare_default_store() -> Path:
    """Create the default store's folder, private (0700), and return the store file's path.

    The file itself is created 0600 by the SQLite store when it is first opened.
    """
    path = default_store_path()
    folder = path.parent
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(folder, 0o700)  # mkdir's mode is masked by the umask; the folder holds credentials
    except OSError as exc:
        raise ConfigurationError(f"cannot create the store folder {folder}: {exc.strerror} "
                                 "(choose another with --store PATH, or --store memory)") from None
    return path

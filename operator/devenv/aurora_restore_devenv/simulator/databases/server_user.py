"""Who the database servers run as.

PostgreSQL refuses to run as root ("root" execution of the PostgreSQL server is not permitted), and
MariaDB only does with `--user=root`. A simulator started by an ordinary user runs its servers as that
user. A simulator running as root (CI containers, `sudo`) runs them as `nobody`: the server processes
are started with that uid and gid (`subprocess.Popen(user=..., group=...)`, no `runuser` or `sudo`
needed), and the directories they write are given to it. Programs the simulator runs as a client
(`psql`, `pg_dumpall`, `mariadb`, `mariadb-dump`) keep running as root: they only talk to the servers
over their Unix sockets.

`nobody` must be able to reach the directories: each directory above a server's must be searchable by
others. `usable()` checks that by running `test` as that user; the fleet falls back to a private
temporary directory for the servers when the data directory is not (a data directory under /root, say).
"""

from __future__ import annotations

import os
import pwd
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

UNPRIVILEGED_USER = "nobody"


@dataclass(frozen=True)
class ServerUser:
    """The uid and gid of the database server processes."""

    name: str
    uid: int
    gid: int

    @classmethod
    def for_this_process(cls) -> ServerUser:
        """`nobody` when the simulator runs as root, else the simulator's own user."""
        if os.geteuid() == 0:
            entry = pwd.getpwnam(UNPRIVILEGED_USER)
        else:
            entry = pwd.getpwuid(os.geteuid())
        return cls(name=entry.pw_name, uid=entry.pw_uid, gid=entry.pw_gid)

    @property
    def is_other_user(self) -> bool:
        """Whether server processes change identity (the simulator runs as root)."""
        return self.uid != os.geteuid()

    def popen_arguments(self) -> dict[str, Any]:
        """What `subprocess.Popen` needs to start a process as this user."""
        if not self.is_other_user:
            return {}
        return {"user": self.uid, "group": self.gid, "extra_groups": []}

    def give(self, *paths: Path) -> None:
        """Make files or directories the simulator created this user's (a no-op for the simulator's user)."""
        if self.is_other_user:
            for path in paths:
                os.chown(path, self.uid, self.gid)

    def make_directory(self, path: Path, mode: int = 0o700) -> Path:
        """Create `path` (parents as needed) and give it to this user."""
        path.mkdir(mode=mode, parents=True, exist_ok=True)
        os.chmod(path, mode)
        self.give(path)
        return path

    def usable(self, directory: Path) -> bool:
        """Whether this user can create files in `directory` (and so reach it)."""
        if not self.is_other_user:
            return os.access(directory, os.W_OK | os.X_OK)
        result = subprocess.run(
            ["test", "-w", str(directory), "-a", "-x", str(directory)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            check=False,
            **self.popen_arguments(),
        )
        return result.returncode == 0

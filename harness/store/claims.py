"""Claims (``claims``): which process does a run or training, kept alive by heartbeats."""

from __future__ import annotations

import time


class ClaimsMixin:
    """The ``claims`` methods of :class:`~llbench.store.database.Store`."""

    def claim(self, key: str, holder: str, host: str, pid: int, stale_after: float = 120.0):
        """Take the claim on ``key`` (a run or training) for ``holder``; return None when taken,
        else the row of the live holder that has it. A claim whose process is gone (same host)
        or whose heartbeat is older than ``stale_after`` seconds is taken over."""
        import os

        now = time.time()
        with self.transaction() as conn:
            row = conn.execute("SELECT * FROM claims WHERE key = ?", (key,)).fetchone()
            if row is not None and row["holder"] != holder:
                alive = now - (row["heartbeat"] or 0) < stale_after
                if alive and row["host"] == host and row["pid"]:
                    try:
                        os.kill(int(row["pid"]), 0)
                    except ProcessLookupError:
                        alive = False
                    except PermissionError:
                        pass
                if alive:
                    return dict(row)
            conn.execute(
                "INSERT OR REPLACE INTO claims (key, holder, host, pid, since, heartbeat) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (key, holder, host, pid, now, now),
            )
        return None

    def heartbeat(self, key: str, holder: str) -> None:
        with self.transaction() as conn:
            conn.execute(
                "UPDATE claims SET heartbeat = ? WHERE key = ? AND holder = ?",
                (time.time(), key, holder),
            )

    def release(self, key: str, holder: str) -> None:
        with self.transaction() as conn:
            conn.execute("DELETE FROM claims WHERE key = ? AND holder = ?", (key, holder))

"""A local state folder (`home`) that was moved or copied: its sqlite MLflow store still holds absolute
paths into the old folder (the experiment's artifact location, each run's artifact URI, the
`checkpoint_uri` tags), so a copy would silently write artifacts into the original. On open, those path
prefixes are rewritten to the current home, once, in one transaction.

The old home is the experiment tag `tubelab.home` (set when tubelab creates the experiment); stores made
before that tag are recognised by their artifact location, `<home>/mlartifacts`.
"""

from __future__ import annotations

import sqlite3
import sys
import urllib.parse
import urllib.request
from pathlib import Path

HOME_TAG = "tubelab.home"
ARTIFACTS = "mlartifacts"  # artifacts live in <home>/mlartifacts (mlflow_runs.artifact_root)


def old_homes(con: sqlite3.Connection, home: str) -> set[str]:
    """The absolute homes other than `home` that the store's experiments were made in (one query)."""
    rows = con.execute("SELECT e.artifact_location, t.value FROM experiments e LEFT JOIN experiment_tags t "
                       "ON t.experiment_id = e.experiment_id AND t.key = ?", (HOME_TAG,)).fetchall()
    found = set()
    for location, tagged in rows:
        if tagged is None and location and location.startswith("file://") and location.endswith(f"/{ARTIFACTS}"):
            tagged = str(Path(urllib.request.url2pathname(urllib.parse.urlparse(location).path)).parent)
        if tagged and tagged != home:
            found.add(tagged)
    return found


def _swap(con: sqlite3.Connection, table: str, column: str, old: str, new: str, where: str = "") -> int:
    """Rewrite the prefix `old` to `new` in table.column, as a plain path and as a file:// URI; values
    that are not `old` itself or under it stay as they are."""
    n = 0
    for o, nw in ((old, new), (Path(old).as_uri(), Path(new).as_uri())):
        n += con.execute(f"UPDATE {table} SET {column} = ? || substr({column}, ?) "
                         f"WHERE ({column} = ? OR substr({column}, 1, ?) = ?){where}",
                         (nw, len(o) + 1, o, len(o) + 1, o + "/")).rowcount
    return n


def relocate(db: Path, home: str | Path) -> int:
    """Point the store `db` (a sqlite MLflow store inside `home`) at `home` if its paths name another
    folder; prints one line and returns how many paths it rewrote (0, silently, when nothing moved)."""
    home = str(Path(home).resolve())
    if not Path(db).is_file():
        return 0
    con = sqlite3.connect(db, timeout=60, isolation_level=None)
    try:
        try:
            if not old_homes(con, home):
                return 0
        except sqlite3.OperationalError:  # a store MLflow has not created its tables in yet
            return 0
        con.execute("BEGIN IMMEDIATE")
        try:
            olds = old_homes(con, home)  # again, under the write lock: another process may have done it
            n = 0
            for old in sorted(olds):
                n += _swap(con, "experiments", "artifact_location", old, home)
                n += _swap(con, "runs", "artifact_uri", old, home)
                n += _swap(con, "tags", "value", old, home, " AND key = 'checkpoint_uri'")
                con.execute("UPDATE experiment_tags SET value = ? WHERE key = ? AND value = ?", (home, HOME_TAG, old))
            if olds:  # stores made before the tag get it now
                con.execute("INSERT OR IGNORE INTO experiment_tags (key, value, experiment_id) SELECT ?, ?, "
                            "experiment_id FROM experiments WHERE artifact_location = ?",
                            (HOME_TAG, home, (Path(home) / ARTIFACTS).as_uri()))
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    finally:
        con.close()
    if olds:
        print(f"tubelab: this state folder moved from {', '.join(sorted(olds))} to {home}; rewrote {n} MLflow "
              f"paths", file=sys.stderr)
    return n

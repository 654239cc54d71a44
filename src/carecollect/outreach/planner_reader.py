"""The planner's column reader process (SQLite): runs the planner's SELECTs through ADBC's
SQLite driver and hands each result back as an Arrow IPC file, so that no Python object
is built per value (about a quarter of the DBAPI path's CPU) and the reads run on the
other core while the planner converts the previous result.

Why a process and not a second connection in the planner's own process: the ADBC driver
links its own copy of SQLite, and two copies of SQLite in one process do not see each
other's POSIX locks. Closing the driver's connection then removed the WAL file under the
application's open connections (commits after that were invisible to the next reader, and
the session's next write reported "database is locked"); see "multiple copies of SQLite
linked into the same application" in SQLite's notes on how a database gets corrupted. In
a separate process the locks work as between any two processes.

Protocol (one JSON object a line): the parent writes {"sql", "params", "file"} requests;
an empty line ends the process. Two connections run the statements at once, both reading
the same snapshot (see `_connections`); after each statement the table is written to
`file` and the process answers {"file", "rows"} (or {"error"}), in the order asked. Run
as a script only: `python planner_reader.py DB`.
This module imports nothing from carecollect, so the process starts in ~0.2 s.
"""

from __future__ import annotations

import json
import queue
import sys
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

WORKERS = 2  # connections reading at once (the driver works outside the GIL)


def _start(conn: Any) -> None:
    """Begin `conn`'s read transaction: its snapshot is taken at its first read."""
    cursor = conn.cursor()
    cursor.execute("PRAGMA query_only = 1")
    cursor.execute("PRAGMA busy_timeout = 30000")
    cursor.execute("SELECT count(*) FROM sqlite_master")
    cursor.fetchall()
    cursor.close()


def _version(probe: Any) -> Any:
    cursor = probe.cursor()
    cursor.execute("PRAGMA data_version")
    value = cursor.fetchall()
    cursor.close()
    return value


def _connections(path: str) -> list[Any]:
    """`WORKERS` connections reading one snapshot: their read transactions all begin
    between two `PRAGMA data_version` of a connection outside any transaction, which
    differ if any other connection committed in between; then it is tried again, and
    after a few tries one connection reads everything."""
    import adbc_driver_sqlite.dbapi as adbc

    probe = adbc.connect(path, autocommit=True)
    try:
        for _ in range(5):
            before = _version(probe)
            conns = []
            for _ in range(WORKERS):
                conns.append(adbc.connect(path))  # DBAPI: autocommit off
                _start(conns[-1])
            if _version(probe) == before:
                return conns
            for conn in conns:
                conn.rollback()
                conn.close()
    finally:
        probe.close()
    conn = adbc.connect(path)
    _start(conn)
    return [conn]


def _run(conn: Any, request: dict[str, Any]) -> dict[str, Any]:
    import importlib

    pa = importlib.import_module("pyarrow")  # untyped; a dependency of the ADBC driver
    try:
        cursor = conn.cursor()
        # One batch: the driver types each column from its first batch, so a column that
        # is NULL in its first rows must not be typed from those alone.
        cursor.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": "1073741824"})
        cursor.execute(request["sql"], request["params"])
        table = cursor.fetch_arrow_table()
        cursor.close()
        with pa.OSFile(request["file"], "wb") as sink, \
                pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
        return {"file": request["file"], "rows": table.num_rows}
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}


def serve(path: str) -> None:
    conns = _connections(path)
    free: queue.Queue[Any] = queue.Queue()
    for conn in conns:
        free.put(conn)

    def job(request: dict[str, Any]) -> dict[str, Any]:
        conn = free.get()
        try:
            return _run(conn, request)
        finally:
            free.put(conn)

    answers: queue.Queue[Future[dict[str, Any]] | None] = queue.Queue()

    def answer() -> None:  # in the order asked, whichever connection finished first
        while (future := answers.get()) is not None:
            sys.stdout.write(json.dumps(future.result()) + "\n")
            sys.stdout.flush()

    writer = threading.Thread(target=answer)
    writer.start()
    try:
        with ThreadPoolExecutor(len(conns)) as pool:
            for line in sys.stdin:
                if not line.strip():
                    break
                answers.put(pool.submit(job, json.loads(line)))
            answers.put(None)
            writer.join()
    finally:
        for conn in conns:
            conn.rollback()
            conn.close()


if __name__ == "__main__":
    serve(sys.argv[1])

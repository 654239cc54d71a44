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
an empty line ends the process. Every statement runs in one read transaction (one
snapshot), in order; after each the process writes the table to `file` and answers
{"file", "rows"} (or {"error"}). Run as a script only: `python planner_reader.py DB`.
This module imports nothing from carecollect, so the process starts in ~0.2 s.
"""

from __future__ import annotations

import json
import sys


def serve(path: str) -> None:
    import importlib

    import adbc_driver_sqlite.dbapi as adbc

    pa = importlib.import_module("pyarrow")  # untyped; a dependency of the ADBC driver

    conn = adbc.connect(path)  # DBAPI: autocommit off, so one read transaction
    try:
        cursor = conn.cursor()
        cursor.execute("PRAGMA query_only = 1")
        cursor.execute("PRAGMA busy_timeout = 30000")
        cursor.close()
        for line in sys.stdin:
            if not line.strip():
                break
            request = json.loads(line)
            try:
                cursor = conn.cursor()
                # One batch: the driver types each column from its first batch, so a
                # column that is NULL in its first rows must not be typed from those.
                cursor.adbc_statement.set_options(
                    **{"adbc.sqlite.query.batch_rows": "1073741824"})
                cursor.execute(request["sql"], request["params"])
                table = cursor.fetch_arrow_table()
                cursor.close()
                with pa.OSFile(request["file"], "wb") as sink, \
                        pa.ipc.new_file(sink, table.schema) as writer:
                    writer.write_table(table)
                answer = {"file": request["file"], "rows": table.num_rows}
            except Exception as exc:
                answer = {"error": f"{type(exc).__name__}: {exc}"}
            sys.stdout.write(json.dumps(answer) + "\n")
            sys.stdout.flush()
    finally:
        conn.rollback()
        conn.close()


if __name__ == "__main__":
    serve(sys.argv[1])

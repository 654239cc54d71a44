#!/usr/bin/env bash
# Install what the tests need into ./.venv and run the whole suite: lint, types, then the
# tests on SQLite and again on the PostgreSQL server (127.0.0.1:5432 unless
# CARECOLLECT_TEST_PG_URL says otherwise). Under CI=true an unreachable PostgreSQL fails.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]'

# Debian's Chromium drives the browser tests (no browser download is possible here).
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian's chromium for the browser tests"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "warning: could not install chromium; browser tests will fail" >&2
  fi
fi

export CARECOLLECT_TEST_PG_URL="${CARECOLLECT_TEST_PG_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/postgres}"
pg_ok() { .venv/bin/python - <<'PY'
import os, sys
import psycopg
url = os.environ["CARECOLLECT_TEST_PG_URL"].replace("postgresql+psycopg://", "postgresql://")
try:
    psycopg.connect(url, connect_timeout=5).close()
except Exception as exc:
    print(f"PostgreSQL unreachable: {type(exc).__name__}", file=sys.stderr)
    sys.exit(1)
PY
}
if ! pg_ok; then
  # Start the machine's own cluster if it is installed but stopped.
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
    sleep 2
  fi
fi

echo "== ruff"
.venv/bin/ruff check src tests bench
echo "== mypy"
.venv/bin/mypy

run_pytest() {
  local status=0
  .venv/bin/python -m pytest "$@" || status=$?
  # Exit code 5 means no tests were collected: not a failure for an empty selection.
  if [ "$status" -ne 0 ] && [ "$status" -ne 5 ]; then exit "$status"; fi
}

WORKERS="${CARECOLLECT_TEST_WORKERS:-2}"
echo "== tests on SQLite"
CARECOLLECT_TEST_BACKEND=sqlite run_pytest -q -n "$WORKERS" -p no:cacheprovider

echo "== tests on PostgreSQL"
if pg_ok; then
  CARECOLLECT_TEST_BACKEND=postgresql run_pytest -q -n "$WORKERS" -p no:cacheprovider
elif [ "${CI:-}" = "true" ]; then
  echo "error: PostgreSQL is unreachable and CI=true: failing" >&2
  exit 1
else
  echo "warning: PostgreSQL unreachable; skipped the PostgreSQL run (it is required in CI)" >&2
fi

"""The core commands through the real entry point: init, doctor, db upgrade, demo, and
one clear line with the right exit code for every kind of bad input."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ENV_KEYS = ("CARECOLLECT_DATA_DIR", "CARECOLLECT_DATABASE_URL", "CARECOLLECT_KEY_PROVIDER")


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ENV_KEYS}
    clean.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "carecollect.cli.main", *args],
        capture_output=True,
        text=True,
        env=clean,
        timeout=300,
        check=False,
    )


def snapshot(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file() and not p.name.endswith("-shm")
    }


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.fixture(scope="module")
def initialized(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("cc") / "data"
    result = run("init", "--data-dir", str(data), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["organization"] == "practice"
    return data


def test_init_creates_private_key_material(initialized: Path) -> None:
    keyring = initialized / "keys" / "keyring.json"
    signing = initialized / "keys" / "audit-signing.key"
    assert stat.S_IMODE(keyring.stat().st_mode) == 0o600
    assert stat.S_IMODE(signing.stat().st_mode) == 0o600
    assert stat.S_IMODE((initialized / "keys").stat().st_mode) == 0o700
    assert (initialized / "carecollect.db").is_file()


def test_init_twice_refuses_and_changes_nothing(initialized: Path) -> None:
    before = snapshot(initialized)
    result = run("init", "--data-dir", str(initialized))
    assert result.returncode == 1
    assert "already initialized" in one_error_line(result)
    assert snapshot(initialized) == before


def test_doctor_passes_on_a_fresh_install(initialized: Path) -> None:
    result = run("doctor", "--data-dir", str(initialized), "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    checks = {c["name"]: c["status"] for c in json.loads(result.stdout)}
    assert checks["database schema"] == "ok"
    assert checks["data keys"] == "ok"
    assert checks["keyring permissions"] == "ok"


def test_db_upgrade_is_idempotent(initialized: Path) -> None:
    result = run("db", "upgrade", "--data-dir", str(initialized))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("database at revision ")


def test_unknown_data_directory_is_one_clear_line(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    result = run("db", "upgrade", "--data-dir", str(missing))
    assert result.returncode == 1
    assert "does not exist" in one_error_line(result)
    assert not missing.exists()


def test_malformed_config_file_is_one_clear_line(initialized: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "carecollect.toml").write_text("planned_patients = [not toml", encoding="utf-8")
    result = run("doctor", "--data-dir", str(data))
    assert result.returncode == 1
    assert "not valid TOML" in one_error_line(result)


def test_invalid_setting_value_is_one_clear_line(tmp_path: Path) -> None:
    result = run("doctor", "--data-dir", str(tmp_path), env={"CARECOLLECT_PORT": "seventy"})
    assert result.returncode == 1
    assert "invalid configuration: port" in one_error_line(result)


def test_unreachable_database_is_one_clear_line(tmp_path: Path) -> None:
    tmp_path.joinpath("data").mkdir()
    result = run(
        "db",
        "upgrade",
        "--data-dir",
        str(tmp_path / "data"),
        env={"CARECOLLECT_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none"},
    )
    assert result.returncode == 1
    assert "is unreachable" in one_error_line(result)


def test_corrupt_keyring_fails_closed_and_changes_nothing(
    initialized: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-a", str(initialized), str(copy)], check=True)
    keyring = copy / "keys" / "keyring.json"
    keyring.write_text('{"version": 1, "current": "x", "keys": [', encoding="utf-8")
    before = snapshot(copy)
    result = run("demo", "--data-dir", str(copy), "--patients", "5", "--no-serve")
    assert result.returncode == 1
    line = one_error_line(result)
    assert "keyring" in line
    assert snapshot(copy) == before


def test_production_mode_refuses_insecure_settings(tmp_path: Path) -> None:
    result = run(
        "doctor",
        "--data-dir",
        str(tmp_path),
        env={"CARECOLLECT_ENVIRONMENT": "production", "CARECOLLECT_DEBUG": "true"},
    )
    assert result.returncode == 1
    line = one_error_line(result)
    assert "refusing to run in production" in line
    assert "debug is on" in line


def test_demo_builds_a_practice_and_is_idempotent(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    first = run("demo", "--data-dir", str(data), "--patients", "60", "--seed", "3", "--no-serve")
    assert first.returncode == 0, first.stderr
    assert "60 patients" in first.stdout
    built = int(first.stdout.split("built ")[1].split()[0])
    second = run("demo", "--data-dir", str(data), "--patients", "60", "--no-serve")
    assert second.returncode == 0, second.stderr
    assert f"demo practice already present: {built} guarantors," in second.stdout


def test_keys_rotate_reencrypts_everything_and_data_stays_readable(tmp_path: Path) -> None:
    data = tmp_path / "rot"
    env = {"CARECOLLECT_KEY_CACHE_TTL_SECONDS": "0"}
    built = run("demo", "--data-dir", str(data), "--patients", "20", "--no-serve", env=env)
    assert built.returncode == 0, built.stderr
    rotated = run("keys", "rotate", "--data-dir", str(data), "--batch-size", "7", env=env)
    assert rotated.returncode == 0, rotated.stderr
    last = rotated.stdout.splitlines()[-1]
    assert last.startswith("rotated data key; re-encrypted ")
    assert int(last.split()[4]) > 100
    kek = run("keys", "rotate", "--kek", "--data-dir", str(data), env=env)
    assert kek.returncode == 0, kek.stderr
    assert "re-wrapped 3 data keys" in kek.stdout  # blind root, retired and new data key
    again = run("demo", "--data-dir", str(data), "--no-serve", env=env)
    assert again.returncode == 0, again.stderr
    doctor = run("doctor", "--data-dir", str(data), "--json", env=env)
    assert doctor.returncode == 0, doctor.stdout


def test_keys_shred_requires_confirmation_then_makes_phi_unreadable(tmp_path: Path) -> None:
    data = tmp_path / "shred"
    assert run("demo", "--data-dir", str(data), "--patients", "5", "--no-serve").returncode == 0
    refused = run("keys", "shred", "--data-dir", str(data))
    assert refused.returncode == 2
    assert "irreversible" in one_error_line(refused)
    done = run("keys", "shred", "--data-dir", str(data), "--confirm", "demo-dental")
    assert done.returncode == 0, done.stderr
    doctor = run("doctor", "--data-dir", str(data), "--json")
    assert doctor.returncode == 1
    checks = {c["name"]: c for c in json.loads(doctor.stdout)}
    assert checks["data keys"]["status"] == "fail"


def test_init_and_demo_on_postgresql(backend: str, database_url: str, tmp_path: Path) -> None:
    """The production database: init migrates an empty PostgreSQL database and the demo
    writes through row-level security as the application role."""
    if backend != "postgresql":
        pytest.skip("PostgreSQL only")
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    with engine.begin() as conn:  # the fixture's database is migrated: start empty
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    env = {"CARECOLLECT_DATABASE_URL": database_url}
    data = tmp_path / "pg"
    init = run("init", "--data-dir", str(data), env=env)
    assert init.returncode == 0, init.stderr
    assert not (data / "carecollect.db").exists()
    demo = run("demo", "--data-dir", str(data), "--patients", "12", "--no-serve", env=env)
    assert demo.returncode == 0, demo.stderr
    assert "12 patients" in demo.stdout
    engine = create_engine(database_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM patient")).scalar() == 12
    engine.dispose()


def test_a_self_operated_install_accepts_an_import(tmp_path: Path) -> None:
    """Without a hosting BAA an import is refused; `--operated-by-covered-entity` at init
    records that the practice runs the deployment itself, and the import goes through."""
    shared = Path(__file__).resolve().parents[3] / "shared" / "data" / "synthea"
    refused_dir, own_dir = tmp_path / "refused", tmp_path / "own"
    assert run("init", "--data-dir", str(refused_dir)).returncode == 0
    refused = run("import", "synthea", str(shared), "--data-dir", str(refused_dir))
    assert refused.returncode == 1
    assert "business associate" in one_error_line(refused).lower()
    assert run("init", "--data-dir", str(own_dir), "--operated-by-covered-entity").returncode == 0
    accepted = run("import", "synthea", str(shared), "--data-dir", str(own_dir), "--json")
    assert accepted.returncode == 0, accepted.stderr

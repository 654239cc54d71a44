"""Key providers: the local keyring file, the environment KEK and plug-ins."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from carecollect.config import Settings
from carecollect.errors import ConfigurationError
from carecollect.kit.crypto import keyring
from carecollect.kit.crypto.errors import KeyUnavailable
from carecollect.kit.crypto.keyring import (
    AesGcmKeyProvider,
    KeyProvider,
    create_local_keyring,
    env_kek_id,
    load_env_provider,
    load_key_provider,
    load_local_keyring,
    rotate_local_keyring,
)

AD = b"organization+key id+purpose"
DEK = bytes(range(32))


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _rewrite(path: Path, document: Any) -> None:
    path.write_text(json.dumps(document))


def test_create_makes_a_0600_file_in_a_0700_directory(tmp_path: Path) -> None:
    path = tmp_path / "data" / "keys" / "keyring.json"
    old_umask = os.umask(0)  # the file must be private even under a permissive umask
    try:
        create_local_keyring(path)
    finally:
        os.umask(old_umask)
    assert _mode(path) == 0o600
    assert _mode(path.parent) == 0o700
    document = json.loads(path.read_text())
    assert document["format"] == "carecollect-keyring"
    assert document["version"] == 1
    assert len(document["keys"]) == 1
    assert document["current"] == document["keys"][0]["id"]
    assert document["current"].startswith("local-")
    assert len(base64.b64decode(document["keys"][0]["key"])) == 32


def test_create_refuses_to_overwrite(keyring_path: Path) -> None:
    before = keyring_path.read_bytes()
    with pytest.raises(ConfigurationError) as caught:
        create_local_keyring(keyring_path)
    assert caught.value.message == (
        f"keyring file {keyring_path} already exists; refusing to overwrite it"
    )
    assert keyring_path.read_bytes() == before


def test_wrap_unwrap_round_trip_and_layout(provider: AesGcmKeyProvider) -> None:
    kek_id, wrapped = provider.wrap(DEK, associated_data=AD)
    assert kek_id == provider.current_kek_id()
    assert isinstance(provider, KeyProvider)
    # version byte, 12-byte nonce, 32-byte key, 16-byte tag
    assert len(wrapped) == 1 + 12 + 32 + 16
    assert wrapped[0] == 1
    assert provider.unwrap(kek_id, wrapped, associated_data=AD) == DEK


def test_unwrap_fails_closed(provider: AesGcmKeyProvider) -> None:
    kek_id, wrapped = provider.wrap(DEK, associated_data=AD)
    with pytest.raises(KeyUnavailable) as other_row:
        provider.unwrap(kek_id, wrapped, associated_data=AD + b"x")
    assert other_row.value.message == (
        f"cannot unwrap a data key with key-encryption key {kek_id}: wrong key, or the "
        "wrapped key was altered or moved to another organization"
    )
    tampered = wrapped[:-1] + bytes([wrapped[-1] ^ 1])
    with pytest.raises(KeyUnavailable):
        provider.unwrap(kek_id, tampered, associated_data=AD)
    with pytest.raises(KeyUnavailable) as unknown:
        provider.unwrap("local-19990101-deadbeef", wrapped, associated_data=AD)
    assert unknown.value.message == (
        "key-encryption key local-19990101-deadbeef is not available from the local key provider"
    )
    with pytest.raises(KeyUnavailable) as short:
        provider.unwrap(kek_id, b"\x01abc", associated_data=AD)
    assert short.value.message == f"a data key wrapped by {kek_id} is malformed"


def test_wrong_kek_fails_closed(tmp_path: Path, provider: AesGcmKeyProvider) -> None:
    kek_id, wrapped = provider.wrap(DEK, associated_data=AD)
    other = tmp_path / "other" / "keyring.json"
    create_local_keyring(other)
    document = json.loads(other.read_text())
    document["keys"][0]["id"] = kek_id  # same id, different key material
    document["current"] = kek_id
    _rewrite(other, document)
    with pytest.raises(KeyUnavailable):
        load_local_keyring(other).unwrap(kek_id, wrapped, associated_data=AD)


@pytest.mark.parametrize(
    ("mutate", "problem"),
    [
        (lambda d: "{not json", "not valid JSON"),
        (lambda d: [1, 2], "not a carecollect keyring"),
        (lambda d: {**d, "version": 2}, "unsupported keyring version"),
        (lambda d: {**d, "keys": []}, "missing 'current' or 'keys'"),
        (lambda d: {**d, "current": "local-x"}, "current key local-x is not in the keyring"),
        (
            lambda d: {**d, "keys": [{**d["keys"][0], "key": "c2hvcnQ="}]},
            "key {id} is 5 bytes, expected 32",
        ),
        (
            lambda d: {**d, "keys": [{**d["keys"][0], "key": "!!not base64!!"}]},
            "key {id} is not valid base64",
        ),
        (lambda d: {**d, "keys": [{**d["keys"][0], "key": 7}]}, "key {id} is missing"),
        (lambda d: {**d, "keys": [{"key": "AA=="}]}, "a key entry has no id"),
    ],
)
def test_corrupt_keyring_is_one_clear_line(
    keyring_path: Path, mutate: Any, problem: str
) -> None:
    document = json.loads(keyring_path.read_text())
    secret = document["keys"][0]["key"]
    kek_id = document["keys"][0]["id"]
    changed = mutate(document)
    if isinstance(changed, str):
        keyring_path.write_text(changed + secret)  # key material inside the broken JSON
    else:
        _rewrite(keyring_path, changed)
    with pytest.raises(ConfigurationError) as caught:
        load_local_keyring(keyring_path)
    message = caught.value.message
    assert message == f"keyring file {keyring_path} is corrupt: " + problem.format(id=kek_id)
    assert "\n" not in message
    assert secret not in message


def test_missing_keyring(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.json"
    with pytest.raises(ConfigurationError) as caught:
        load_local_keyring(path)
    assert caught.value.message == (
        f"keyring file {path} does not exist (run `carecollect init`, or set "
        "CARECOLLECT_KEYRING_PATH)"
    )


def test_open_permissions_refused_in_production_only(keyring_path: Path, tmp_path: Path) -> None:
    keyring_path.chmod(0o644)
    development = Settings(data_dir=tmp_path, keyring_path=keyring_path)
    assert load_key_provider(development).name == "local"
    production = Settings(data_dir=tmp_path, keyring_path=keyring_path, environment="production")
    with pytest.raises(ConfigurationError) as caught:
        load_key_provider(production)
    assert caught.value.message == (
        f"keyring file {keyring_path} is readable by group or others (mode 0644); "
        f"run: chmod 600 {keyring_path}"
    )
    keyring_path.chmod(0o600)
    assert load_key_provider(production).name == "local"


def test_rotation_adds_a_current_kek_and_keeps_the_old(keyring_path: Path) -> None:
    before = load_local_keyring(keyring_path)
    old_id, wrapped = before.wrap(DEK, associated_data=AD)
    new_id = rotate_local_keyring(keyring_path)
    after = load_local_keyring(keyring_path)
    assert new_id != old_id
    assert after.current_kek_id() == new_id
    assert after.kek_ids == (old_id, new_id)
    assert after.unwrap(old_id, wrapped, associated_data=AD) == DEK
    assert after.wrap(DEK, associated_data=AD)[0] == new_id
    assert _mode(keyring_path) == 0o600
    assert sorted(p.name for p in keyring_path.parent.iterdir()) == ["keyring.json"]


def test_env_provider() -> None:
    first, second = bytes(32), bytes([1]) * 32
    value = ",".join(base64.b64encode(k).decode() for k in (first, second))
    provider = load_env_provider(value)
    assert provider.name == "env"
    # A known answer: the id is HMAC-SHA256(key, label) truncated, stable across restarts.
    assert env_kek_id(first) == "env-4314567b09541476"
    assert provider.current_kek_id() == env_kek_id(first)
    assert provider.kek_ids == (env_kek_id(first), env_kek_id(second))
    old = load_env_provider(base64.b64encode(second).decode())
    kek_id, wrapped = old.wrap(DEK, associated_data=AD)
    assert provider.unwrap(kek_id, wrapped, associated_data=AD) == DEK


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, "key_provider is 'env' but CARECOLLECT_KEK_BASE64 is not set"),
        ("  ", "key_provider is 'env' but CARECOLLECT_KEK_BASE64 is not set"),
        ("%%%", "CARECOLLECT_KEK_BASE64 key #1 is not valid base64"),
        ("AAAA", "CARECOLLECT_KEK_BASE64 key #1 is 3 bytes, expected 32"),
    ],
)
def test_env_provider_errors(value: str | None, message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_env_provider(value)
    assert caught.value.message == message


def test_load_key_provider_env(tmp_path: Path) -> None:
    key = base64.b64encode(bytes(range(32))).decode()
    settings = Settings(data_dir=tmp_path, key_provider="env", kek_base64=key)
    provider = load_key_provider(settings)
    assert provider.name == "env"
    assert provider.current_kek_id() == env_kek_id(bytes(range(32)))


class _EntryPoint:
    def __init__(self, name: str, target: Any) -> None:
        self.name = name
        self._target = target

    def load(self) -> Any:
        return self._target


def test_plugin_provider(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    built: list[Settings] = []

    def factory(settings: Settings) -> KeyProvider:
        built.append(settings)
        return AesGcmKeyProvider("fake-kms", {"kms-1": bytes(32)}, "kms-1")

    def broken(settings: Settings) -> KeyProvider:
        raise RuntimeError("secret detail that must not leak")

    monkeypatch.setattr(
        keyring,
        "_entry_points",
        lambda: [
            _EntryPoint("fake-kms", factory),
            _EntryPoint("broken", broken),
            _EntryPoint("wrong", lambda s: object()),
        ],
    )
    settings = Settings(data_dir=tmp_path, key_provider="fake-kms")
    provider = load_key_provider(settings)
    assert provider.name == "fake-kms"
    assert built == [settings]

    with pytest.raises(ConfigurationError) as failed:
        load_key_provider(Settings(data_dir=tmp_path, key_provider="broken"))
    assert failed.value.message == "key provider plug-in 'broken' failed to load: RuntimeError"
    with pytest.raises(ConfigurationError) as wrong:
        load_key_provider(Settings(data_dir=tmp_path, key_provider="wrong"))
    assert wrong.value.message == "key provider plug-in 'wrong' did not return a KeyProvider"
    with pytest.raises(ConfigurationError) as unknown:
        load_key_provider(Settings(data_dir=tmp_path, key_provider="vault"))
    assert unknown.value.message == (
        "unknown key provider 'vault' (available: broken, env, fake-kms, local, wrong)"
    )


def test_repr_shows_no_key_material(provider: AesGcmKeyProvider, keyring_path: Path) -> None:
    secret = json.loads(keyring_path.read_text())["keys"][0]["key"]
    assert repr(provider) == f"<AesGcmKeyProvider local current={provider.current_kek_id()}>"
    assert secret not in repr(provider)

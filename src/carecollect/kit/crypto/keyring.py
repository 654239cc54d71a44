"""Key providers: where the key-encryption key (KEK) lives.

A KEK never encrypts PHI. It only wraps and unwraps the per-organization data keys stored
in the `data_key` table (envelope encryption), so rotating it re-wraps a handful of rows
and never touches patient data (docs/CRYPTO.md, "Key hierarchy").

Three kinds of provider sit behind one `KeyProvider` interface:

* ``local`` (the default): a keyring file created by ``carecollect init`` with mode 0600
  in a 0700 directory. It holds every KEK generation; the newest is current, the older
  ones stay until no data key is wrapped by them.
* ``env``: ``CARECOLLECT_KEK_BASE64``, one base64 key, or several separated by commas
  during a rotation (the first is current).
* a plug-in (a cloud KMS): any name registered in the ``carecollect.key_providers``
  entry-point group. The entry point is a callable taking `Settings` and returning a
  `KeyProvider`.

Every failure is one line naming the problem and never key material: a corrupt keyring
raises `ConfigurationError`; a KEK that cannot unwrap raises `KeyUnavailable` (fail
closed).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import os
import secrets
import stat
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from carecollect.config import Settings
from carecollect.errors import ConfigurationError
from carecollect.kit.crypto.errors import KeyUnavailable

ENTRY_POINT_GROUP = "carecollect.key_providers"
KEYRING_FORMAT = "carecollect-keyring"
KEYRING_VERSION = 1
KEK_BYTES = 32  # AES-256 (HIPAA-SEC-ENCRYPT: NIST SP 800-111 strength at rest)
_WRAP_VERSION = b"\x01"
_NONCE_BYTES = 12
_KEK_ID_MAX = 64  # data_key.kek_id is String(64)


@runtime_checkable
class KeyProvider(Protocol):
    """Wraps and unwraps data keys under a key-encryption key it never reveals."""

    name: str

    def current_kek_id(self) -> str:
        """The id of the KEK that `wrap` uses now."""
        ...

    def wrap(self, plaintext_key: bytes, *, associated_data: bytes) -> tuple[str, bytes]:
        """Encrypt a data key under the current KEK; return (kek_id, wrapped bytes)."""
        ...

    def unwrap(self, kek_id: str, wrapped: bytes, *, associated_data: bytes) -> bytes:
        """Decrypt a data key wrapped by `kek_id`; raise `KeyUnavailable` when impossible."""
        ...


class AesGcmKeyProvider:
    """A provider holding its KEKs in memory and wrapping with AES-256-GCM.

    Wrapped form: version byte 0x01, 96-bit random nonce, ciphertext and 128-bit tag. The
    associated data (the data key's organization, id and purpose) binds a wrapped key to
    its row, so a wrapped key copied to another organization does not unwrap.
    """

    def __init__(self, name: str, keks: Mapping[str, bytes], current: str) -> None:
        if current not in keks:
            raise ConfigurationError(f"{name} key provider: current KEK {current} is missing")
        for kek_id, key in keks.items():
            if len(key) != KEK_BYTES:
                raise ConfigurationError(
                    f"{name} key provider: KEK {kek_id} is not {KEK_BYTES} bytes"
                )
        self.name = name
        self._current = current
        self._aead = {kek_id: AESGCM(key) for kek_id, key in keks.items()}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} current={self._current}>"

    @property
    def kek_ids(self) -> tuple[str, ...]:
        return tuple(self._aead)

    def current_kek_id(self) -> str:
        return self._current

    def wrap(self, plaintext_key: bytes, *, associated_data: bytes) -> tuple[str, bytes]:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead[self._current].encrypt(nonce, plaintext_key, associated_data)
        return self._current, _WRAP_VERSION + nonce + sealed

    def unwrap(self, kek_id: str, wrapped: bytes, *, associated_data: bytes) -> bytes:
        aead = self._aead.get(kek_id)
        if aead is None:
            raise KeyUnavailable(
                f"key-encryption key {kek_id} is not available from the {self.name} key provider"
            )
        if len(wrapped) < 1 + _NONCE_BYTES + 16 or wrapped[:1] != _WRAP_VERSION:
            raise KeyUnavailable(f"a data key wrapped by {kek_id} is malformed")
        nonce = wrapped[1 : 1 + _NONCE_BYTES]
        try:
            return aead.decrypt(nonce, wrapped[1 + _NONCE_BYTES :], associated_data)
        except InvalidTag:
            raise KeyUnavailable(
                f"cannot unwrap a data key with key-encryption key {kek_id}: wrong key, or the "
                "wrapped key was altered or moved to another organization"
            ) from None


# Local keyring file --------------------------------------------------------------------


def _new_kek_id() -> str:
    return f"local-{datetime.now(UTC):%Y%m%d}-{secrets.token_hex(4)}"


def _serialize(current: str, keys: list[dict[str, str]]) -> bytes:
    document = {
        "format": KEYRING_FORMAT,
        "version": KEYRING_VERSION,
        "current": current,
        "keys": keys,
    }
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode("ascii")


def _write_exclusive(path: Path, content: bytes) -> None:
    """Create `path` (which must not exist) with mode 0600 and durable content."""
    # O_EXCL makes "refuse to overwrite" atomic; the explicit fchmod defeats a loose umask.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, content)
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def create_local_keyring(path: Path) -> None:
    """Create a new keyring file with one fresh KEK (mode 0600, parent directory 0700).

    Refuses to overwrite an existing file: replacing a keyring destroys every data key
    wrapped by it, which is crypto-shredding of every organization.
    """
    path = Path(path)
    parent = path.parent
    if not parent.exists():
        parent.mkdir(parents=True, mode=0o700)
        os.chmod(parent, 0o700)  # mkdir's mode is filtered by the umask
    if path.exists() or path.is_symlink():
        raise ConfigurationError(f"keyring file {path} already exists; refusing to overwrite it")
    kek_id = _new_kek_id()
    key = base64.b64encode(secrets.token_bytes(KEK_BYTES)).decode("ascii")
    entry = {"id": kek_id, "created_at": datetime.now(UTC).isoformat(), "key": key}
    try:
        _write_exclusive(path, _serialize(kek_id, [entry]))
    except FileExistsError:
        raise ConfigurationError(
            f"keyring file {path} already exists; refusing to overwrite it"
        ) from None
    _fsync_dir(parent)


def _read_keyring(path: Path, *, production: bool) -> tuple[str, list[dict[str, str]]]:
    """Parse and validate a keyring file; every problem is one `ConfigurationError` line."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        raise ConfigurationError(
            f"keyring file {path} does not exist (run `carecollect init`, or set "
            "CARECOLLECT_KEYRING_PATH)"
        ) from None
    if stat.S_ISLNK(info.st_mode):
        info = path.stat()
    if not stat.S_ISREG(info.st_mode):
        raise ConfigurationError(f"keyring file {path} is not a regular file")
    # HIPAA-SEC-ENCRYPT: keys must be stored separately and protected. In production a
    # keyring readable by anyone but its owner is refused; development only tolerates it.
    if production and info.st_mode & 0o077:
        raise ConfigurationError(
            f"keyring file {path} is readable by group or others "
            f"(mode {stat.S_IMODE(info.st_mode):04o}); run: chmod 600 {path}"
        )
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(
            f"keyring file {path} cannot be read: {exc.strerror or 'I/O error'}"
        ) from None
    where = f"keyring file {path} is corrupt"
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        # The parser's message may quote file content (key material): never relay it.
        raise ConfigurationError(f"{where}: not valid JSON") from None
    if not isinstance(document, dict) or document.get("format") != KEYRING_FORMAT:
        raise ConfigurationError(f"{where}: not a carecollect keyring")
    if document.get("version") != KEYRING_VERSION:
        raise ConfigurationError(f"{where}: unsupported keyring version")
    current = document.get("current")
    entries = document.get("keys")
    if not isinstance(current, str) or not isinstance(entries, list) or not entries:
        raise ConfigurationError(f"{where}: missing 'current' or 'keys'")
    seen: set[str] = set()
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            raise ConfigurationError(f"{where}: a key entry has no id")
        kek_id = entry["id"]
        if not kek_id or len(kek_id) > _KEK_ID_MAX or kek_id in seen:
            raise ConfigurationError(f"{where}: key id {kek_id!r} is invalid or repeated")
        seen.add(kek_id)
        _decode_kek(entry.get("key"), f"{where}: key {kek_id}")
    if current not in seen:
        raise ConfigurationError(f"{where}: current key {current} is not in the keyring")
    return current, entries


def _decode_kek(value: object, where: str) -> bytes:
    if not isinstance(value, str):
        raise ConfigurationError(f"{where} is missing")
    try:
        key = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigurationError(f"{where} is not valid base64") from None
    if len(key) != KEK_BYTES:
        raise ConfigurationError(f"{where} is {len(key)} bytes, expected {KEK_BYTES}")
    return key


def load_local_keyring(path: Path, *, production: bool = False) -> AesGcmKeyProvider:
    """The ``local`` provider: every KEK in the keyring file, the newest current."""
    current, entries = _read_keyring(Path(path), production=production)
    keks = {e["id"]: _decode_kek(e["key"], f"keyring key {e['id']}") for e in entries}
    return AesGcmKeyProvider("local", keks, current)


def rotate_local_keyring(path: Path) -> str:
    """Add a new current KEK to the keyring file and return its id.

    Old KEKs stay so existing data keys still unwrap; run `KeyManager.rewrap_all` with a
    freshly loaded provider afterwards. The file is replaced atomically (write a 0600
    temporary file, fsync, rename) so a crash leaves either the old or the new keyring.
    """
    path = Path(path)
    _, entries = _read_keyring(path, production=False)
    kek_id = _new_kek_id()
    while any(e["id"] == kek_id for e in entries):
        kek_id = _new_kek_id()
    key = base64.b64encode(secrets.token_bytes(KEK_BYTES)).decode("ascii")
    entries = [*entries, {"id": kek_id, "created_at": datetime.now(UTC).isoformat(), "key": key}]
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        _write_exclusive(temporary, _serialize(kek_id, entries))
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
    _fsync_dir(path.parent)
    return kek_id


# Environment-variable provider ---------------------------------------------------------


def env_kek_id(key: bytes) -> str:
    """A stable, non-secret id for an environment KEK (the environment stores no id).

    HMAC of a fixed label under the key: identifies the key without revealing anything
    usable about it.
    """
    return "env-" + hmac.digest(key, b"carecollect kek id v1", hashlib.sha256)[:8].hex()


def load_env_provider(value: str | None) -> AesGcmKeyProvider:
    """The ``env`` provider from CARECOLLECT_KEK_BASE64 (comma-separated, current first)."""
    if value is None or not value.strip():
        raise ConfigurationError(
            "key_provider is 'env' but CARECOLLECT_KEK_BASE64 is not set"
        )
    keks: dict[str, bytes] = {}
    parts = [p for p in value.split(",") if p.strip()]
    for position, part in enumerate(parts, start=1):
        key = _decode_kek(part, f"CARECOLLECT_KEK_BASE64 key #{position}")
        keks.setdefault(env_kek_id(key), key)
    current = env_kek_id(_decode_kek(parts[0], "CARECOLLECT_KEK_BASE64 key #1"))
    return AesGcmKeyProvider("env", keks, current)


# Plug-ins ------------------------------------------------------------------------------


def _entry_points() -> Iterable[Any]:
    return metadata.entry_points(group=ENTRY_POINT_GROUP)


def load_key_provider(settings: Settings) -> KeyProvider:
    """The provider named by `settings.key_provider`: local, env or an entry-point plug-in."""
    name = settings.key_provider
    production = settings.environment == "production"
    if name == "local":
        return load_local_keyring(settings.resolved_keyring_path, production=production)
    if name == "env":
        secret = settings.kek_base64.get_secret_value() if settings.kek_base64 else None
        return load_env_provider(secret)
    found = [ep for ep in _entry_points() if ep.name == name]
    if not found:
        installed = sorted({"local", "env", *(ep.name for ep in _entry_points())})
        raise ConfigurationError(
            f"unknown key provider {name!r} (available: {', '.join(installed)})"
        )
    try:
        factory: Callable[[Settings], object] = found[0].load()
        provider = factory(settings)
    except ConfigurationError:
        raise
    except Exception as exc:  # a plug-in's own failure, reported in one line
        raise ConfigurationError(
            f"key provider plug-in {name!r} failed to load: {type(exc).__name__}"
        ) from None
    if not isinstance(provider, KeyProvider):
        raise ConfigurationError(f"key provider plug-in {name!r} did not return a KeyProvider")
    return provider

"""API keys: read from the settings, kept only as SHA-256 hashes, checked on every protected request.

A key's id is its name, or for a bare key the first 12 hex digits of its hash. The id, never the key,
is what a trace records as its owner and what concurrency is counted by.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from api.config import Settings

MIN_KEY_CHARS = 16
"""Shorter keys are refused at start: a guessable key is worse than none, because it looks safe."""
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class AccessConfigError(ValueError):
    """The API key settings cannot be used (a bad line, a short key, a duplicate, a missing file)."""


@dataclass(frozen=True)
class ApiKey:
    """One key as kept in memory: its id, its hash and its role."""

    key_id: str
    """The name, or the first 12 hex digits of the hash of a bare key."""
    digest: bytes
    """SHA-256 of the key."""
    admin: bool = False
    """May add documents to the index."""


@dataclass(frozen=True)
class Principal:
    """Who makes a request."""

    key_id: str | None
    """The key's id; None when keys are off."""
    admin: bool
    """May add documents (every caller may, with keys off)."""
    scoped: bool
    """Sees only the traces it created (keys are on)."""
    counted_as: str
    """What concurrent requests are counted by: the key id, or with keys off the client's address."""


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


def _parse(entry: str, where: str, *, allow_role: bool) -> ApiKey:
    """One ``name:key``, ``name:key:admin`` (in the file) or bare ``key``; the key itself is never echoed."""
    parts = [p.strip() for p in entry.split(":")]
    admin = allow_role and len(parts) == 3 and parts[2] == "admin"
    if admin:
        parts = parts[:2]
    if len(parts) == 1:
        name, key = None, parts[0]
    elif len(parts) == 2:
        name, key = parts
    else:
        raise AccessConfigError(
            f"{where}: expected name:key{':admin' if allow_role else ''} or a bare key (keys cannot hold ':')"
        )
    if name is not None and not _NAME.fullmatch(name):
        raise AccessConfigError(f"{where}: a key name is 1 to 64 of A-Z a-z 0-9 _ . -")
    if len(key) < MIN_KEY_CHARS:
        raise AccessConfigError(f"{where}: the key is shorter than {MIN_KEY_CHARS} characters")
    digest = _digest(key)
    return ApiKey(key_id=name or digest.hex()[:12], digest=digest, admin=admin)


def parse_keys(api_keys: str, key_file: str | None, admin_keys: str) -> list[ApiKey]:
    """The keys of ``VERIFACT_API_KEYS``, ``VERIFACT_API_KEY_FILE`` and ``VERIFACT_ADMIN_KEYS``.

    Raises:
        AccessConfigError: an entry is malformed, a key is short, an id repeats, the file cannot be read,
            or an admin entry names no key.
    """
    keys = [
        _parse(entry, f"VERIFACT_API_KEYS entry {n}", allow_role=False)
        for n, entry in enumerate((e for e in api_keys.split(",") if e.strip()), 1)
    ]
    if key_file:
        try:
            lines = Path(key_file).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise AccessConfigError(f"VERIFACT_API_KEY_FILE {key_file}: cannot read it: {exc}") from exc
        for number, line in enumerate(lines, 1):
            entry = line.split("#", 1)[0].strip()
            if entry:
                keys.append(_parse(entry, f"{key_file} line {number}", allow_role=True))
    keys = _with_admins(keys, [a.strip() for a in admin_keys.split(",") if a.strip()])
    seen: set[str] = set()
    for key in keys:
        if key.key_id in seen or any(hmac.compare_digest(key.digest, k.digest) for k in keys if k is not key):
            raise AccessConfigError(f"API key {key.key_id!r} is configured twice (the same name or key)")
        seen.add(key.key_id)
    return keys


def _with_admins(keys: list[ApiKey], admins: Iterable[str]) -> list[ApiKey]:
    """Grant the admin role to the keys named (by name or by the key itself)."""
    out = list(keys)
    for entry in admins:
        digest = _digest(entry)
        hits = [i for i, k in enumerate(out) if k.key_id == entry or hmac.compare_digest(k.digest, digest)]
        if not hits:
            shown = entry if _NAME.fullmatch(entry) and len(entry) < MIN_KEY_CHARS else "(a key)"
            raise AccessConfigError(f"VERIFACT_ADMIN_KEYS names no configured key: {shown}")
        for i in hits:
            out[i] = ApiKey(out[i].key_id, out[i].digest, admin=True)
    return out


class KeyRing:
    """The configured keys, as hashes; with none, keys are off and every request is let in."""

    def __init__(self, keys: Iterable[ApiKey] = ()) -> None:
        """Hold ``keys``; an empty ring means keys are off."""
        self._keys = tuple(keys)

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyRing:
        """The keys the settings configure (see `parse_keys`)."""
        return cls(
            parse_keys(
                settings.api_keys.get_secret_value(),
                settings.api_key_file,
                settings.admin_keys.get_secret_value(),
            )
        )

    @property
    def enabled(self) -> bool:
        """Whether requests need a key."""
        return bool(self._keys)

    @property
    def admins(self) -> int:
        """How many keys have the admin role."""
        return sum(k.admin for k in self._keys)

    def __len__(self) -> int:
        """How many keys there are."""
        return len(self._keys)

    def find(self, token: str) -> ApiKey | None:
        """The key whose hash matches ``token``'s, compared in constant time against every key."""
        digest = _digest(token)
        found: ApiKey | None = None
        for key in self._keys:  # no early exit: the time taken says nothing about which key matched
            if hmac.compare_digest(key.digest, digest):
                found = key
        return found


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (or ``localhost``); anything else may be reachable."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost: it may resolve to anything


def exposure_note(host: str, *, keys: int, admins: int, allow_open: bool) -> str:
    """The line `verifact serve` prints about access; refuses an open server on a reachable address.

    Raises:
        AccessConfigError: keys are off, ``host`` is not loopback, and ``allow_open`` is False.
    """
    if keys:
        return f"API keys are on: {keys} key(s), {admins} admin"
    if is_loopback(host):
        return f"API keys are off: listening on {host} only (set VERIFACT_API_KEYS to serve others)"
    if not allow_open:
        raise AccessConfigError(
            f"API keys are off, so verifact will not listen on {host}: anyone who can reach it could read "
            "every trace. Set VERIFACT_API_KEYS or VERIFACT_API_KEY_FILE, or VERIFACT_ALLOW_OPEN=true "
            "to serve it open on purpose"
        )
    return f"API keys are off and VERIFACT_ALLOW_OPEN=true: open to anyone who can reach {host}"


def serve_note(settings: Settings) -> str:
    """`exposure_note` for the settings' keys and host: what `verifact serve` checks and prints first.

    Raises:
        AccessConfigError: the key settings cannot be used, or keys are off on a reachable address.
    """
    keyring = KeyRing.from_settings(settings)
    return exposure_note(
        settings.host, keys=len(keyring), admins=keyring.admins, allow_open=settings.allow_open
    )

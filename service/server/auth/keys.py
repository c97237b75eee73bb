"""The API keys file: one ``name:sha256-of-key[:requests-per-second[:burst]]`` line per key.

The server only ever holds the SHA-256 digest of a key, so the file can be read by operators and backed
up without exposing any key; the plaintext is printed once, by ``atelier keys new``, and then exists only
with its owner. ``#`` starts a comment (whole line or after the fields); blank lines are ignored. Any
malformed line fails the whole file with its line number, so a typo never silently drops or opens a key.

This module has no server dependencies: the CLI (``service/cli/keys.py``) reads and writes the same file.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")  # safe as a log token and a metric label
DIGEST_PATTERN = re.compile(r"^[0-9a-f]{64}$")
KEY_BYTES = 32  # secrets.token_urlsafe(32): 43 characters, 256 bits


class KeysFileError(ValueError):
    """The keys file cannot be used; the message names the file and the line."""


@dataclass(frozen=True)
class KeyEntry:
    """One key: its name (what logs and metrics show), the SHA-256 digest of the key, its own limits.

    ``rps`` / ``burst`` None: the server's defaults apply (``ATELIER_DEFAULT_KEY_RPS`` / ``_BURST``).
    """

    name: str
    digest: bytes
    rps: float | None = None
    burst: int | None = None

    def line(self) -> str:
        fields = [self.name, self.digest.hex()]
        if self.rps is not None:
            fields.append(f"{self.rps:g}")
            if self.burst is not None:
                fields.append(str(self.burst))
        return ":".join(fields)


def new_key() -> str:
    """A fresh random key (URL-safe, so it fits a header or metadata value unquoted)."""
    return secrets.token_urlsafe(KEY_BYTES)


def digest_of(key: str) -> bytes:
    """The SHA-256 digest of a key as the server stores and compares it."""
    return hashlib.sha256(key.encode("utf-8")).digest()


def check_name(name: str) -> str:
    if not NAME_PATTERN.match(name):
        raise KeysFileError(
            f"Key name {name!r} is not allowed: use 1-64 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit."
        )
    return name


def check_limits(rps: float | None, burst: int | None) -> None:
    if rps is not None and (not math.isfinite(rps) or rps < 0):
        raise KeysFileError(f"requests per second must be a number >= 0, got {rps!r}.")
    if burst is not None and burst < 0:
        raise KeysFileError(f"burst must be an integer >= 0, got {burst!r}.")
    if burst is not None and rps is None:
        raise KeysFileError("a burst needs a rate before it (name:digest:rps:burst).")


def parse_line(text: str) -> KeyEntry | None:
    """One line of the file: a ``KeyEntry``, or None for a blank or comment line. Raises KeysFileError."""
    body = text.split("#", 1)[0].strip()
    if not body:
        return None
    fields = [f.strip() for f in body.split(":")]
    if not 2 <= len(fields) <= 4:
        raise KeysFileError(
            f"expected name:sha256-of-key[:requests-per-second[:burst]], got {len(fields)} fields."
        )
    name = check_name(fields[0])
    digest = fields[1].lower()
    if not DIGEST_PATTERN.match(digest):
        raise KeysFileError(
            f"key {name!r}: the second field must be the 64 hex digits of the key's SHA-256 "
            "(never the key itself; `atelier keys new` writes the line)."
        )
    rps: float | None = None
    burst: int | None = None
    if len(fields) >= 3 and fields[2] != "":
        try:
            rps = float(fields[2])
        except ValueError:
            raise KeysFileError(f"key {name!r}: requests per second {fields[2]!r} is not a number.") from None
    if len(fields) == 4 and fields[3] != "":
        try:
            burst = int(fields[3])
        except ValueError:
            raise KeysFileError(f"key {name!r}: burst {fields[3]!r} is not an integer.") from None
    try:
        check_limits(rps, burst)
    except KeysFileError as exc:
        raise KeysFileError(f"key {name!r}: {exc}") from None
    return KeyEntry(name, bytes.fromhex(digest), rps, burst)


def parse_keys(text: str, source: str = "keys file") -> list[KeyEntry]:
    """Every key of a file's text, in order. Names and keys must be unique."""
    entries: list[KeyEntry] = []
    names: set[str] = set()
    digests: set[bytes] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        try:
            entry = parse_line(line)
            if entry is None:
                continue
            if entry.name in names:
                raise KeysFileError(f"key name {entry.name!r} appears twice.")
            if entry.digest in digests:
                raise KeysFileError(f"key {entry.name!r} has the same key as an earlier line.")
        except KeysFileError as exc:
            raise KeysFileError(f"{source}, line {number}: {exc}") from None
        names.add(entry.name)
        digests.add(entry.digest)
        entries.append(entry)
    return entries


def read_keys(path: Path) -> list[KeyEntry]:
    """Parse the keys file at ``path``; a missing or unreadable file is a ``KeysFileError`` too."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise KeysFileError(f"cannot read the API keys file {path}: {exc}") from None
    return parse_keys(text, str(path))


def append_key(path: Path, entry: KeyEntry) -> None:
    """Add ``entry``'s line to the file (created owner-only if new), refusing a name already in it."""
    existing = read_keys(path) if path.exists() else []
    if any(e.name == entry.name for e in existing):
        raise KeysFileError(f"{path} already has a key named {entry.name!r}; revoke it first.")
    if any(e.digest == entry.digest for e in existing):  # a 256-bit collision: only a reused key
        raise KeysFileError(f"{path} already has this key.")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as f:
        if f.tell() > 0 and not path.read_bytes().endswith(b"\n"):
            f.write("\n")  # a hand-edited file whose last line has no newline
        f.write(entry.line() + "\n")


def remove_key(path: Path, name: str) -> None:
    """Drop the line of key ``name`` (comments and other lines stay as they are); atomic replace."""
    text = path.read_text(encoding="utf-8")
    read_keys(path)  # refuse to rewrite a file that is already broken
    kept: list[str] = []
    found = False
    for line in text.splitlines(keepends=True):
        entry = parse_line(line)
        if entry is not None and entry.name == name:
            found = True
            continue
        kept.append(line)
    if not found:
        raise KeysFileError(f"{path} has no key named {name!r}.")
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, path.stat().st_mode & 0o777)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("".join(kept))
    os.replace(tmp, path)  # the server re-reads either the old file or the new one, never half of it

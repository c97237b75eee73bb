"""The style-model registry on disk: ``models/manifest.json``, model cards and checksums.

Layout of a models folder (see docs/ARCHITECTURE.md)::

    models/manifest.json                 {"version": 1, "models": [ManifestEntry, ...]}
    models/<name>.<arch>.onnx            the fp32 graph (input "input", output "output", RGB 0..255)
    models/<name>.<arch>.fp16.onnx       optional half-precision graph, used only with a GPU provider
    models/<name>.<arch>.json            the model card (ModelCard)

The manifest is the single list of what the server loads; every file is checked against its sha256 there,
so a truncated copy or a file swapped under a name is refused instead of served. Writes are atomic
(temporary file + ``os.replace``) and serialised by a lock file, so a training run registering a model
cannot leave a half-written manifest for a server that is starting.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from service.core.errors import ModelLoadError

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1
KINDS = ("style", "encoder", "decoder")  # ManifestEntry.kind


@dataclass(frozen=True)
class ManifestEntry:
    """One model in ``manifest.json``. Paths are relative to the models folder."""

    name: str  # "<style>" for the mobile/mobile2 net, "<style>-johnson" for the johnson net
    style: str  # style key, e.g. "starry_night"
    arch: str  # "mobile", "mobile2", "mobile2w", "johnson" or "johnson2" (service.core.stylize.nets registry)
    version: str
    file: str  # fp32 .onnx
    sha256: str  # hex digest of ``file``
    card: str  # model card .json
    fp16_file: str | None = None  # optional half-precision graph for GPU providers
    fp16_sha256: str | None = None
    # What the file is: "style" (a transform net, StyleEngine), or the arbitrary-style parts, "encoder"
    # and "decoder" (service.core.arbitrary.engine). Written only when not "style", so the manifests of
    # style models read and write as before.
    kind: str = "style"
    # A multi-style net (arch "mobile2_multi", nets/multi.py): its style names in the order of the graph's
    # style vector. None for single-style nets, and then not written, so their manifests are unchanged.
    styles: tuple[str, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {}
        for k, v in asdict(self).items():
            if v is None or (k == "kind" and v == "style"):
                continue
            d[k] = list(v) if k == "styles" else str(v)
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ManifestEntry:
        """Build from a manifest item; raises ``ModelLoadError`` naming the missing or bad keys."""
        if not isinstance(data, Mapping):
            raise ModelLoadError(f"Manifest entry must be an object, got {type(data).__name__}.")
        required = ("name", "style", "arch", "version", "file", "sha256", "card")
        missing = [k for k in required if not isinstance(data.get(k), str) or not data.get(k)]
        label = data.get("name", "?")
        if missing:
            raise ModelLoadError(f"Manifest entry {label!r} lacks {', '.join(missing)}.")
        if data.get("kind", "style") not in KINDS:
            raise ModelLoadError(f"Manifest entry {label!r}: kind must be one of {', '.join(KINDS)}.")
        if bool(data.get("fp16_file")) != bool(data.get("fp16_sha256")):
            raise ModelLoadError(f"Manifest entry {label!r}: fp16_file and fp16_sha256 go together.")
        styles = data.get("styles")
        if styles is not None and (
            not isinstance(styles, list)
            or not styles
            or not all(isinstance(n, str) and n for n in styles)
            or len(set(styles)) != len(styles)
        ):
            raise ModelLoadError(f"Manifest entry {label!r}: styles must be a list of distinct names.")
        for key in ("file", "card", "fp16_file"):
            value = data.get(key)
            if value and (Path(value).is_absolute() or ".." in Path(value).parts):
                raise ModelLoadError(f"Manifest entry {label!r}: {key} must be a path inside the folder.")
        return cls(
            name=data["name"],
            style=data["style"],
            arch=data["arch"],
            version=str(data["version"]),
            file=data["file"],
            sha256=data["sha256"].lower(),
            card=data["card"],
            fp16_file=data.get("fp16_file") or None,
            fp16_sha256=(data.get("fp16_sha256") or "").lower() or None,
            kind=str(data.get("kind") or "style"),
            styles=tuple(styles) if styles is not None else None,
        )


@dataclass
class ModelCard:
    """What a person (and ``atelier styles``) needs to know about one trained model."""

    name: str
    arch: str
    version: str
    style_sha256: str = ""  # sha256 of the style image the model was trained on
    title: str = ""  # the painting's title
    artist: str = ""
    year: str = ""
    licence: str = ""  # the painting's licence (e.g. "public domain")
    training: dict[str, Any] = field(default_factory=dict)  # steps, batch, size, weights, taps, data...
    final_losses: dict[str, float] = field(default_factory=dict)  # content, style, tv at the last step
    parity_max_abs: dict[str, float] = field(default_factory=dict)  # "256" -> max |torch - onnx|, 0-255
    opset: int = 0
    onnx_sha256: str = ""
    backbone: str = ""  # backbone whose taps the training losses used
    created: str = ""  # ISO 8601 UTC
    extra: dict[str, Any] = field(default_factory=dict)  # any further keys, kept on a round trip

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        extra = d.pop("extra")
        return {**extra, **d}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelCard:
        if not isinstance(data, Mapping):
            raise ModelLoadError(f"A model card must be a JSON object, got {type(data).__name__}.")
        known = {f.name for f in fields(cls)} - {"extra"}
        missing = [k for k in ("name", "arch", "version") if k not in data]
        if missing:
            raise ModelLoadError(f"Model card lacks {', '.join(missing)}.")
        kwargs = {k: data[k] for k in known if k in data}
        kwargs["version"] = str(kwargs["version"])
        kwargs["year"] = str(kwargs.get("year", ""))
        extra = {k: v for k, v in data.items() if k not in known}
        return cls(**kwargs, extra=extra)


def sha256_file(path: str | Path, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks (model files can be tens of MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk_size):
            digest.update(block)
    return digest.hexdigest()


def _write_json_atomic(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, sort_keys=False)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelLoadError(f"{what} not found: {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"{what} {path} is not valid JSON: {exc}") from None


def read_manifest(models_dir: str | Path, errors: dict[str, str] | None = None) -> list[ManifestEntry]:
    """Entries of ``models_dir/manifest.json`` in file order.

    A missing or unreadable manifest raises ``ModelLoadError``. A malformed *entry* raises too, unless
    ``errors`` is given: then it is recorded there (key: its name or ``"manifest[i]"``) and skipped, so one
    bad line does not take the other models down. Duplicate names keep the first entry.
    """
    path = Path(models_dir) / MANIFEST_NAME
    data = _read_json(path, "Model manifest")
    if not isinstance(data, dict) or not isinstance(data.get("models"), list):
        raise ModelLoadError(f"Model manifest {path} must be an object with a 'models' list.")
    if data.get("version", MANIFEST_VERSION) != MANIFEST_VERSION:
        raise ModelLoadError(
            f"Model manifest {path} has version {data.get('version')!r}; this build reads {MANIFEST_VERSION}."
        )
    entries: list[ManifestEntry] = []
    seen: set[str] = set()
    for i, item in enumerate(data["models"]):
        key = item.get("name") if isinstance(item, dict) and isinstance(item.get("name"), str) else None
        try:
            entry = ManifestEntry.from_dict(item)
            if entry.name in seen:
                raise ModelLoadError(f"Manifest lists {entry.name!r} twice; the first entry is used.")
        except ModelLoadError as exc:
            if errors is None:
                raise
            errors[f"{key}#{i}" if key in seen else key or f"manifest[{i}]"] = str(exc)
            continue
        seen.add(entry.name)
        entries.append(entry)
    return entries


@contextlib.contextmanager
def _manifest_lock(models_dir: Path) -> Iterator[None]:
    """Serialise read-modify-write of the manifest between processes (POSIX advisory lock)."""
    models_dir.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - non-POSIX: atomic replace still prevents torn files
        yield
        return
    # The lock is taken on the folder itself: the manifest's inode changes on every atomic replace, and a
    # lock file would be one more thing to keep out of git.
    fd = os.open(models_dir, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def write_manifest(models_dir: str | Path, entries: list[ManifestEntry]) -> Path:
    """Write the whole manifest atomically."""
    path = Path(models_dir) / MANIFEST_NAME
    _write_json_atomic(path, {"version": MANIFEST_VERSION, "models": [e.to_dict() for e in entries]})
    return path


def add_to_manifest(models_dir: str | Path, entry: ManifestEntry) -> Path:
    """Add ``entry`` (replacing an entry of the same name in place) and write the manifest atomically.

    Creates the folder and the manifest when absent. Entries that fail to parse are kept out of the result
    rather than blocking the registration of a good model.
    """
    folder = Path(models_dir)
    with _manifest_lock(folder):
        path = folder / MANIFEST_NAME
        entries = read_manifest(folder, errors={}) if path.exists() else []
        names = [e.name for e in entries]
        if entry.name in names:
            entries[names.index(entry.name)] = entry
        else:
            entries.append(entry)
        return write_manifest(folder, entries)


def write_card(path: str | Path, card: ModelCard) -> Path:
    """Write a model card as pretty JSON (atomically)."""
    p = Path(path)
    _write_json_atomic(p, card.to_dict())
    return p


def read_card(path: str | Path) -> ModelCard:
    """Read a model card; ``ModelLoadError`` when missing or malformed."""
    return ModelCard.from_dict(_read_json(Path(path), "Model card"))

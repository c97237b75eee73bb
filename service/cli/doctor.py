"""``atelier doctor``: what this installation runs with, for bug reports and "why is it slow" questions.

* versions of atelier, Python and the libraries that decide behaviour (torch, ONNX Runtime, gRPC, ...);
* the ONNX Runtime providers compiled in, the settings' preference, why any is unusable here, and the one
  the style models actually run on; the torch device of the slow path;
* the models of the models folder as the server would load them (checksums checked), and load errors;
* every setting with its value and where it came from: a flag, an ``ATELIER_*`` environment variable,
  the ``.env`` file, or the default (the same precedence as pydantic-settings applies).

Exit status 1 when a model failed to load or none loaded, so ``atelier doctor`` can gate a deployment.
"""

from __future__ import annotations

import argparse
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from service import __version__
from service.cli.common import add_json_arg, print_json, print_table, settings_from_args

# Distribution names; for ONNX Runtime the first installed of the two builds counts.
LIBRARIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("torch", ("torch",)),
    ("torchvision", ("torchvision",)),
    ("onnxruntime", ("onnxruntime-gpu", "onnxruntime")),
    ("grpcio", ("grpcio",)),
    ("protobuf", ("protobuf",)),
    ("numpy", ("numpy",)),
    ("fastapi", ("fastapi",)),
    ("pydantic-settings", ("pydantic-settings",)),
)
SECRET_WORDS = ("key", "token", "secret", "password")  # such settings show as *** (none exist yet)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("doctor", help="versions, providers, models and settings (with their source)")
    p.add_argument(
        "--models-dir", type=Path, default=None, help="folder to check (default: ATELIER_MODELS_DIR)"
    )
    add_json_arg(p, "the report")
    p.set_defaults(func=run)


def versions() -> dict[str, str]:
    found = {"atelier": __version__, "python": platform.python_version()}
    for name, dists in LIBRARIES:
        found[name] = "not installed"
        for dist in dists:
            try:
                found[name] = metadata.version(dist) + ("" if dist == name else f" ({dist})")
                break
            except metadata.PackageNotFoundError:
                continue
    return found


def setting_sources(flags: dict[str, Any]) -> tuple[Path, dict[str, str]]:
    """The ``.env`` file pydantic-settings reads and, per field, where its value comes from."""
    from pydantic_settings import DotEnvSettingsSource, EnvSettingsSource

    from service.settings import Settings

    env_file = Path(str(Settings.model_config.get("env_file") or ".env"))
    prefix = str(Settings.model_config.get("env_prefix", ""))
    from_env = EnvSettingsSource(Settings)()  # both sources use the model's prefix and case rules
    from_dotenv = DotEnvSettingsSource(Settings)() if env_file.is_file() else {}
    sources = {}
    for name in Settings.model_fields:
        var = f"{prefix}{name}".upper()
        if flags.get(name) is not None:
            sources[name] = "flag --" + name.replace("_", "-")
        elif name in from_env:
            sources[name] = f"environment {var}"
        elif name in from_dotenv:
            sources[name] = f"{env_file} {var}"
        else:
            sources[name] = "default"
    return env_file.resolve(), sources


def _torch_device(settings: Any) -> dict[str, Any]:
    import torch

    cuda = torch.cuda.is_available()
    return {
        "setting": settings.device,
        "device": settings.torch_device(),
        "cuda_available": cuda,
        "cuda_build": torch.version.cuda,
        "gpu": torch.cuda.get_device_name(0) if cuda else None,
    }


def collect(args: argparse.Namespace) -> dict[str, Any]:
    from service.cli.runtime import load_engine, provider_report

    flags = {"models_dir": args.models_dir}
    settings = settings_from_args(args, **flags)
    env_file, sources = setting_sources(flags)
    values = settings.model_dump(mode="json")
    rows = []
    for name, value in values.items():
        secret = any(w in name for w in SECRET_WORDS) and value is not None
        rows.append({"name": name, "value": "***" if secret else value, "source": sources[name]})
    report = provider_report(settings.ort_providers)
    with load_engine(settings, args.verbose, announce=False) as engine:
        models = [
            {
                "name": i.name,
                "arch": i.arch,
                "version": i.version,
                "precision": i.precision,
                "provider": i.provider,
            }
            for i in engine.styles()
        ]
        errors = dict(sorted(engine.load_errors.items()))
    used = sorted({m["provider"] for m in models}) or report.chosen[:1]
    return {
        "versions": versions(),
        "onnxruntime": {
            "available": report.available,
            "preferred": report.preferred,
            "unusable": report.unusable,
            "used": used[0] if len(used) == 1 else used,
            "note": report.note(used[0]),
        },
        "torch": _torch_device(settings),
        "models": {"dir": str(Path(settings.models_dir).resolve()), "loaded": models, "errors": errors},
        "env_file": {"path": str(env_file), "exists": env_file.is_file()},
        "settings": rows,
    }


def _text(value: Any) -> str:
    return ", ".join(map(str, value)) if isinstance(value, list) else str(value)


def print_report(doc: dict[str, Any]) -> None:
    print("versions:")
    print_table(None, list(doc["versions"].items()), indent="  ")
    ort = doc["onnxruntime"]
    print("onnx runtime providers:")
    lines = [
        ("compiled in", _text(ort["available"])),
        ("preferred", _text(ort["preferred"])),
        *[(f"unusable {p.removesuffix('ExecutionProvider')}", why) for p, why in ort["unusable"].items()],
        ("used", _text(ort["used"]) + (f" ({ort['note']})" if ort["note"] else "")),
    ]
    print_table(None, lines, indent="  ")
    t = doc["torch"]
    gpu = f", {t['gpu']}" if t["gpu"] else ""
    cuda = "available" if t["cuda_available"] else "not available"
    print(f"torch device: {t['device']} (setting {t['setting']}; CUDA {cuda}, build {t['cuda_build']}{gpu})")
    m = doc["models"]
    print(f"models in {m['dir']}: {len(m['loaded'])} loaded, {len(m['errors'])} failed")
    if m["loaded"]:
        header = ("name", "arch", "version", "precision", "provider")
        print_table(header, [[r[k] for k in header] for r in m["loaded"]], indent="  ")
    for name, why in m["errors"].items():
        print(f"  failed {name}: {why}")
    env = doc["env_file"]
    print(f"settings (.env file {env['path']}: {'read' if env['exists'] else 'not present'}):")
    print_table(
        ("name", "value", "source"),
        [[r["name"], _text(r["value"]), r["source"]] for r in doc["settings"]],
        indent="  ",
    )


def run(args: argparse.Namespace) -> int:
    doc = collect(args)
    if args.json:
        print_json(doc)
    else:
        print_report(doc)
    problems = doc["models"]["errors"] or not doc["models"]["loaded"]
    if problems and not args.json:
        print("atelier: doctor: some models did not load (see above)", file=sys.stderr)
    return 1 if problems else 0

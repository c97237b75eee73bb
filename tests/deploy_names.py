"""What the deploy/ files may name, read from the code: metric series, settings, the worker command, the v2
protocol's routes and gRPC service, and a small kustomize-style overlay reader for the manifest tests.

Issue #21 adds the shared Redis queue, ``atelier worker`` and the Open Inference Protocol in other
modules at the same time as these manifests. Until a piece is in the code, its agreed names below stand
in; once any of a family appears in ``service/``, only the code counts, so a rename there fails the tests
instead of passing on the list kept here. ``pending()`` says which names still come from the list.
"""

from __future__ import annotations

import argparse
import copy
import functools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from service.cli import build_parser
from service.server.metrics import Metrics
from service.settings import Settings
from tests.test_deploy import exported_series

ROOT = Path(__file__).resolve().parents[1]
SERVICE = ROOT / "service"

# The names agreed in issue #21 for the queue's metrics (series -> label names).
QUEUE_SERIES: dict[str, set[str]] = {
    "atelier_redis_queue_depth": set(),
    "atelier_redis_queue_oldest_age_seconds": set(),
    "atelier_redis_workers": set(),
    "atelier_job_attempts_total": {"kind"},
}
QUEUE_SETTING = "ATELIER_QUEUE_URL"
V2_REST_PATHS = ("/v2/health/live", "/v2/health/ready", "/v2/models/{name}/infer")
V2_GRPC_SERVICE = "inference.GRPCInferenceService"
# Labels Prometheus adds in Kubernetes (Prometheus Operator PodMonitor, or the pod-annotation job).
K8S_SCRAPE_LABELS = {"namespace", "pod", "container", "endpoint"}

_pending: set[str] = set()


def pending() -> list[str]:
    """The names some test took from the agreed list because the code does not have them yet."""
    return sorted(_pending)


@functools.cache
def _source_text() -> str:
    return "\n".join(p.read_text(errors="replace") for p in sorted(SERVICE.rglob("*.py")))


def _family_in_code(*prefixes: str) -> bool:
    text = _source_text()
    return any(f'"{p}' in text or f"'{p}" in text for p in prefixes)


def known_series() -> dict[str, set[str]]:
    """Series -> labels the service exports: its registry (with the shared queue's collectors enabled),
    plus the queue's agreed names while none of them is in the code.

    A queue series also counts when a string literal in ``service/`` declares it outside ``Metrics``."""
    metrics = Metrics()
    enable = getattr(metrics, "enable_shared_queue", None)  # the queue's collectors exist only with a queue
    if callable(enable):
        enable()
    names = exported_series(metrics)
    coded = _family_in_code("atelier_redis_", "atelier_job_attempts")
    for series, labels in QUEUE_SERIES.items():
        if series in names:
            continue
        base = series.removesuffix("_total")
        if _family_in_code(base):
            names[series] = labels  # declared outside Metrics: labels as agreed
        elif not coded:
            names[series] = labels
            _pending.add(series)
    return names


def setting_env_names() -> set[str]:
    """Every ``ATELIER_*`` variable ``Settings`` reads (and ATELIER_QUEUE_URL while it is not a field)."""
    names = {f"ATELIER_{field.upper()}" for field in Settings.model_fields}
    if QUEUE_SETTING not in names:
        names.add(QUEUE_SETTING)
        _pending.add(QUEUE_SETTING)
    return names


def defaults() -> Settings:
    """The defaults the server starts with (no environment, no .env)."""
    return Settings(_env_file=None)  # type: ignore[call-arg]


def settings_from_env(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """``Settings`` as a process with exactly these ``ATELIER_*`` variables reads them (so a manifest's
    values pass the same validation as at start); agreed names not yet in ``Settings`` are left out."""
    for name in [n for n in os.environ if n.startswith("ATELIER_")]:
        monkeypatch.delenv(name)
    fields = {f"ATELIER_{f.upper()}" for f in Settings.model_fields}
    for name, value in env.items():
        if name in fields:
            monkeypatch.setenv(name, str(value))
    return defaults()


@dataclass(frozen=True)
class WorkerArgs:
    concurrency: int
    metrics_port: int


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def worker_args(argv: list[str]) -> WorkerArgs:
    """``atelier worker ...`` parsed by the real CLI parser, or by the agreed interface until it has one."""
    assert argv[:2] == ["atelier", "worker"], argv
    commands = _subcommands(build_parser())
    if "worker" in commands:
        args = build_parser().parse_args(argv[1:])
        return WorkerArgs(int(args.concurrency), int(args.metrics_port))
    _pending.add("atelier worker")
    agreed = argparse.ArgumentParser(prog="atelier worker", exit_on_error=False)
    agreed.add_argument("--concurrency", type=int, default=1)
    agreed.add_argument("--metrics-port", type=int, default=9102)
    args = agreed.parse_args(argv[2:])
    return WorkerArgs(args.concurrency, args.metrics_port)


@functools.cache
def unstarted_app() -> Any:
    """The REST app over a data plane that was never started (no models: not ready, but alive)."""
    from service.server.plane.config import PlaneConfig
    from service.server.plane.dataplane import DataPlane
    from service.server.transport.rest.app import create_app

    return create_app(DataPlane(PlaneConfig.from_settings(defaults(), warmup=False)))


def _route_paths(routes: list[Any], prefix: str = "") -> Iterator[str]:
    for route in routes:
        if hasattr(route, "original_router"):  # FastAPI >= 0.165 keeps included routers nested
            context = getattr(route, "include_context", None)
            yield from _route_paths(
                route.original_router.routes, prefix + (getattr(context, "prefix", "") or "")
            )
        elif hasattr(route, "path"):
            yield prefix + route.path


def v2_rest_paths() -> set[str]:
    """The v2 routes of the REST app (its catch-all for unknown /v2 paths left out), else the agreed ones."""
    v2 = {p for p in _route_paths(unstarted_app().routes) if p.startswith("/v2/") and ":path}" not in p}
    if not v2:
        _pending.add("/v2 REST routes")
        return set(V2_REST_PATHS)
    return v2


def grpc_services() -> set[str]:
    """Fully qualified gRPC services the repository's .proto files declare (v2's agreed one until then)."""
    services = set()
    for proto in [*(ROOT / "protos").rglob("*.proto"), *SERVICE.rglob("*.proto")]:
        text = proto.read_text()
        package = next(
            (ln.split()[1].rstrip(";") for ln in text.splitlines() if ln.startswith("package ")), ""
        )
        for line in text.splitlines():
            if line.strip().startswith("service "):
                services.add(f"{package}.{line.split()[1]}")
    if V2_GRPC_SERVICE not in services and not _family_in_code("inference.GRPCInferenceService"):
        services.add(V2_GRPC_SERVICE)
        _pending.add(V2_GRPC_SERVICE)
    return services


# --- kustomize, as far as these overlays use it -----------------------------------------------------------
def load_docs(path: Path) -> list[dict[str, Any]]:
    """Every document of a (multi-document) YAML file; empty documents are an error."""
    docs = list(yaml.safe_load_all(path.read_text()))
    assert docs and all(isinstance(d, (dict, list)) for d in docs), f"{path}: an empty or scalar document"
    return docs


def kustomize(folder: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """(kind, name) -> object after the overlay's patches: resources (files or folders with their own
    kustomization.yaml), strategic-merge patches, JSON 6902 ``add``/``replace`` ops and image tags."""
    kust = yaml.safe_load((folder / "kustomization.yaml").read_text())
    objs: dict[tuple[str, str], dict[str, Any]] = {}
    for resource in kust["resources"]:
        path = (folder / resource).resolve()
        assert path.exists(), f"{folder.name}: resource {resource} does not exist"
        found = (
            kustomize(path)
            if path.is_dir()
            else {(d["kind"], d["metadata"]["name"]): d for d in load_docs(path)}
        )
        assert not found.keys() & objs.keys(), (
            f"{folder.name}: objects defined twice: {found.keys() & objs.keys()}"
        )
        objs.update(copy.deepcopy(found))
    for patch in kust.get("patches", []):
        path = folder / patch["path"]
        assert path.is_file(), f"{folder.name}: patch {patch['path']} does not exist"
        key = (patch["target"]["kind"], patch["target"]["name"])
        assert key in objs, f"{folder.name}: patch {patch['path']} targets {key}, which no resource defines"
        body = yaml.safe_load(path.read_text())
        if isinstance(body, list):
            for op in body:
                json6902(objs[key], op)
        else:
            assert (body["kind"], body["metadata"]["name"]) == key, (
                f"{path.name}: not the target's kind and name"
            )
            merge(objs[key], body)
    for image in kust.get("images", []):
        for obj in objs.values():
            for c in obj.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
                if c["image"].split(":")[0] == image["name"]:
                    c["image"] = f"{image.get('newName', image['name'])}:{image['newTag']}"
    return objs


def json6902(obj: dict[str, Any], op: dict[str, Any]) -> None:
    *parents, last = op["path"].lstrip("/").split("/")
    node: Any = obj
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if op["op"] == "add" and isinstance(node, list):
        node.insert(len(node) if last == "-" else int(last), op["value"])
    elif op["op"] in ("add", "replace"):
        if op["op"] == "replace":
            assert (int(last) < len(node)) if isinstance(node, list) else (last in node), (
                f"nothing at {op['path']}"
            )
        node[int(last) if isinstance(node, list) else last] = op["value"]
    else:
        raise AssertionError(f"op {op['op']} is not used by these overlays")


def merge(base: Any, patch: Any) -> None:
    """Strategic merge as these patches need it: maps merge, lists of named items (containers, env,
    volumes) merge by name, other lists are replaced."""
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge(base[key], value)
        elif isinstance(value, list) and value and all(isinstance(v, dict) and "name" in v for v in value):
            items = base.setdefault(key, [])
            for item in value:
                match = next((b for b in items if b.get("name") == item["name"]), None)
                if match is None:
                    items.append(item)
                else:
                    merge(match, item)
        else:
            base[key] = value

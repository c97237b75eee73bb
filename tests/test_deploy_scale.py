"""The scaled-out compose stack (deploy/docker-compose.scale.yml) fits together without a Docker engine.

This machine has Docker's client but no engine and no ``docker compose`` plugin (Debian 12 packages only
the old Python docker-compose 1.29), so ``docker compose config`` cannot run here. Instead both compose
files are validated against the Compose Specification's JSON schema (the copy check-jsonschema vendors,
a dev dependency), and the services, ports, environment, dependencies and health checks are checked
against each other, the HAProxy config, Prometheus' scrape config and the server's own settings and CLI.
"""

from __future__ import annotations

import importlib.resources
import json
import re
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

from tests import deploy_names as names
from tests.test_deploy import compose_mounts

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
SCALE = DEPLOY / "docker-compose.scale.yml"
HAPROXY = DEPLOY / "haproxy" / "haproxy.cfg"
HAPROXY_IMAGE_CFG = "/usr/local/etc/haproxy/haproxy.cfg"  # where the official image reads its config


@pytest.fixture(scope="module")
def compose_schema() -> jsonschema.Draft202012Validator:
    vendor = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    schema = json.loads(vendor.joinpath("compose-spec.json").read_text())
    return jsonschema.Draft202012Validator(schema)


@pytest.fixture(scope="module")
def stack() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(SCALE.read_text())
    return doc


def schema_errors(validator: jsonschema.Draft202012Validator, doc: Any) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]


@pytest.mark.parametrize("name", ["docker-compose.yml", "docker-compose.scale.yml"])
def test_compose_files_follow_the_compose_spec(
    compose_schema: jsonschema.Draft202012Validator, name: str
) -> None:
    assert schema_errors(compose_schema, yaml.safe_load((DEPLOY / name).read_text())) == []


def test_compose_schema_check_catches_typos(
    compose_schema: jsonschema.Draft202012Validator, stack: dict[str, Any]
) -> None:
    for path, value in (
        (("api", "healthcheck", "intervall"), "5s"),  # unknown key
        (("api", "depends_on", "redis", "condition"), "service_ready"),  # not a condition
        (("lb", "ports"), "8080:8080"),  # a list, not a string
    ):
        bad = json.loads(json.dumps(stack))
        node = bad["services"]
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
        assert schema_errors(compose_schema, bad), path


def test_two_api_replicas_and_two_workers_behind_one_load_balancer(stack: dict[str, Any]) -> None:
    services = stack["services"]
    assert {"redis", "api", "worker", "lb", "prometheus", "grafana"} == services.keys()
    assert services["api"]["deploy"]["replicas"] == 2 and services["worker"]["deploy"]["replicas"] == 2
    s = names.defaults()
    # Only the load balancer publishes the API's ports; replicas cannot share a host port.
    assert "ports" not in services["api"] and "ports" not in services["worker"]
    assert set(services["lb"]["ports"]) == {f"{s.http_port}:{s.http_port}", f"{s.grpc_port}:{s.grpc_port}"}
    assert set(services["api"]["expose"]) == {str(s.http_port), str(s.grpc_port)}
    # One image for both roles, built from the Dockerfile's cpu target.
    assert services["api"]["build"] == services["worker"]["build"]
    assert services["api"]["image"] == services["worker"]["image"]
    build = services["api"]["build"]
    assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == ROOT / "Dockerfile"
    assert services["api"]["command"] == ["atelier", "serve"]
    for name in ("api", "worker"):
        assert services[name]["read_only"] is True and "/tmp" in services[name]["tmpfs"]


def test_environment_names_settings_and_points_at_the_redis_service(stack: dict[str, Any]) -> None:
    services = stack["services"]
    settings = names.setting_env_names()
    for name in ("api", "worker"):
        env = services[name]["environment"]
        assert set(env) <= settings, f"{name}: not settings: {sorted(set(env) - settings)}"
        url = urlsplit(env[names.QUEUE_SETTING])
        assert url.scheme == "redis" and url.hostname == "redis" and url.port == 6379, url
        assert url.path.strip("/").isdigit()
    assert services["redis"]["image"].startswith("redis:")
    command = services["redis"]["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"
    assert "/data" in {v.split(":")[1] for v in services["redis"]["volumes"]}
    assert all(
        v.split(":")[0] in stack["volumes"]
        for s in services.values()
        for v in s.get("volumes", [])
        if not v.startswith("./")
    )


def seconds(duration: str) -> float:
    """A compose duration such as ``30s`` or ``1m30s``."""
    units = {"h": 3600, "m": 60, "s": 1}
    return sum(float(n) * units[u] for n, u in re.findall(r"([\d.]+)([hms])", duration))


def test_environment_values_pass_the_servers_validation_and_drain_in_time(
    stack: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("api", "worker"):
        service = stack["services"][name]
        s = names.settings_from_env(service["environment"], monkeypatch)
        assert s.job_grace_s <= s.grace_period_s < seconds(service["stop_grace_period"]), name


def test_start_order_waits_on_health_checks(stack: dict[str, Any]) -> None:
    services = stack["services"]
    for name in ("api", "worker"):
        assert services[name]["depends_on"] == {"redis": {"condition": "service_healthy"}}, name
    assert services["lb"]["depends_on"] == {"api": {"condition": "service_healthy"}}
    for name in ("redis", "api", "worker", "lb"):
        assert services[name]["healthcheck"]["test"][0] == "CMD", f"{name} needs a health check"
    assert services["redis"]["healthcheck"]["test"][1:] == ["redis-cli", "ping"]


def python_check_url(test: list[str]) -> str:
    """The URL a ``python -c "... urlopen('URL' ..."`` health check opens."""
    assert test[:3] == ["CMD", "python", "-c"], test
    (url,) = re.findall(r"urlopen\('([^']+)'", test[3])
    return url


def test_health_checks_ask_the_ports_the_processes_serve(stack: dict[str, Any]) -> None:
    services = stack["services"]
    s = names.defaults()
    api_url = urlsplit(python_check_url(services["api"]["healthcheck"]["test"]))
    assert (api_url.port, api_url.path) == (s.http_port, "/readyz")
    worker = names.worker_args(services["worker"]["command"])
    worker_url = urlsplit(python_check_url(services["worker"]["healthcheck"]["test"]))
    assert (worker_url.port, worker_url.path) == (worker.metrics_port, "/metrics")
    assert services["worker"]["expose"] == [str(worker.metrics_port)]
    lb_url = urlsplit(services["lb"]["healthcheck"]["test"][-1])
    assert lb_url.port == s.http_port and lb_url.path == haproxy_directives()["monitor-uri"][0][0]


# --- HAProxy ---------------------------------------------------------------------------------------------
def haproxy_sections() -> dict[str, list[list[str]]]:
    """Section header (``frontend atelier``) -> its directive lines, split into words."""
    sections: dict[str, list[list[str]]] = {}
    current: list[list[str]] = []
    for raw in HAPROXY.read_text().splitlines():
        line = raw.split("#", 1)[0].rstrip()
        if not line.strip():
            continue
        if not raw.startswith((" ", "\t")):
            current = sections.setdefault(line.strip(), [])
        else:
            current.append(shlex.split(line))
    return sections


def haproxy_directives(section: str = "frontend atelier") -> dict[str, list[list[str]]]:
    found: dict[str, list[list[str]]] = {}
    for words in haproxy_sections()[section]:
        found.setdefault(words[0], []).append(words[1:])
    return found


def test_load_balancer_config_is_mounted_and_listens_on_the_published_ports(stack: dict[str, Any]) -> None:
    lb = stack["services"]["lb"]
    assert lb["image"].startswith("haproxy:")
    assert (DEPLOY / compose_mounts(lb)[HAPROXY_IMAGE_CFG]).resolve() == HAPROXY
    binds = {tuple(b) for b in haproxy_directives()["bind"]}
    published = {p.split(":")[1] for p in lb["ports"]}
    assert {b[0].lstrip(":") for b in binds} == published
    s = names.defaults()
    assert (f":{s.grpc_port}", "proto", "h2") in binds, "the gRPC port speaks HTTP/2 only"
    assert (f":{s.http_port}",) in binds, "the main port takes HTTP/1.1 and h2c alike"


def test_load_balancer_backends_are_the_api_replicas_ports_and_readiness() -> None:
    s = names.defaults()
    front = haproxy_directives()
    assert ["api_grpc", "if", "grpc_call"] in front["use_backend"] and front["default_backend"] == [
        ["api_rest"]
    ]
    assert ["grpc_call", "req.hdr(content-type)", "-m", "beg", "application/grpc"] in front["acl"]
    for backend, port in (("api_rest", s.http_port), ("api_grpc", s.grpc_port)):
        d = haproxy_directives(f"backend {backend}")
        (template,) = d["server-template"]
        assert template[2] == f"api:{port}", backend  # the compose service name: every replica
        assert int(template[1]) >= 2, backend
        assert d["option"][-1] == ["httpchk", "GET", "/readyz"] and d["http-check"] == [
            ["expect", "status", "200"]
        ]
        (defaults,) = d["default-server"]
        assert "resolvers" in defaults and "check" in defaults, backend
    (grpc_defaults,) = haproxy_directives("backend api_grpc")["default-server"]
    assert grpc_defaults[grpc_defaults.index("proto") + 1] == "h2"
    assert grpc_defaults[grpc_defaults.index("port") + 1] == str(s.http_port), "readiness asks the REST port"
    # Streams (gRPC renders, SSE job events) may run as long as a job: the timeouts must outlast it.
    limits = {w[1]: w[2] for w in haproxy_sections()["defaults"] if w[0] == "timeout"}
    minutes = {k: float(v.rstrip("m")) * 60 for k, v in limits.items() if v.endswith("m")}
    assert minutes.get("client", 0) > s.job_max_runtime_s and minutes.get("server", 0) > s.job_max_runtime_s


# --- Prometheus ------------------------------------------------------------------------------------------
def test_prometheus_scrapes_every_replica_and_worker_and_loads_the_queue_alerts(
    stack: dict[str, Any],
) -> None:
    prom = yaml.safe_load((DEPLOY / "prometheus" / "prometheus-scale.yml").read_text())
    services = stack["services"]
    mounts = compose_mounts(services["prometheus"])
    assert (DEPLOY / mounts["/etc/prometheus/prometheus.yml"]).name == "prometheus-scale.yml"
    for rule_file in prom["rule_files"]:
        assert rule_file in mounts and (DEPLOY / mounts[rule_file]).is_file(), rule_file
    assert "/etc/prometheus/alerts-queue.yml" in prom["rule_files"]
    jobs = {j["job_name"]: j for j in prom["scrape_configs"]}
    worker = names.worker_args(services["worker"]["command"])
    # alerts.yml selects up{job="atelier"}: the API's job keeps that name.
    for job, service, port in (
        ("atelier", "api", names.defaults().http_port),
        ("atelier-worker", "worker", worker.metrics_port),
    ):
        (sd,) = jobs[job]["dns_sd_configs"]
        assert sd["names"] == [service] and sd["type"] == "A" and sd["port"] == port, job
        assert jobs[job]["metrics_path"] == "/metrics"

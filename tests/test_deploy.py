"""Static checks of the deploy/ files (no cluster is needed); the Dockerfile's are in ``test_deploy_docker.py``.

Every metric name that a Grafana panel or an alert rule queries must be one the service exports: the
names are collected from a real ``Metrics`` registry, not from a list kept by hand.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from service.server.metrics import Metrics
from tests.dockerfile import parse_dockerfile

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
K8S_BASE = DEPLOY / "k8s" / "base"
K8S_GPU = DEPLOY / "k8s" / "overlays" / "gpu"

# Labels Prometheus attaches at scrape time, plus the histogram bucket label.
SCRAPE_LABELS = {"instance", "job", "service", "le"}


# --- metrics the service exports ------------------------------------------------------------------------
def exported_series(metrics: Metrics | None = None) -> dict[str, set[str]]:
    """Queryable series names -> label names, from the service's own registry (a default ``Metrics``
    unless given one, e.g. with the shared queue's collectors enabled).

    Counters are queried as ``<name>_total``, histograms as ``_bucket`` / ``_sum`` / ``_count``.
    """
    metrics = metrics if metrics is not None else Metrics()
    names: dict[str, set[str]] = {}
    for collector in vars(metrics).values():
        if not isinstance(collector, MetricWrapperBase):
            continue
        labels = set(collector._labelnames)
        for family in collector.describe():
            if family.type == "counter":
                series = [f"{family.name}_total"]
            elif family.type == "histogram":
                series = [f"{family.name}_bucket", f"{family.name}_sum", f"{family.name}_count"]
            else:
                series = [family.name]
            for s in series:
                names[s] = labels | ({"le"} if s.endswith("_bucket") else set())
    assert "atelier_request_duration_seconds_bucket" in names  # the collector walk found the histograms
    return names


@pytest.fixture(scope="module")
def exported() -> dict[str, set[str]]:
    return exported_series()


def test_promql_check_rejects_what_the_service_lacks() -> None:
    """The checker itself: wrong suffixes, typos and labels of other metrics fail."""
    names = exported_series()
    check_promql("sum by (reason) (rate(atelier_errors_total[5m]))", names, "ok")
    for bad in (
        "rate(atelier_error_total[5m])",  # typo
        "atelier_errors",  # a counter is queried with _total
        "atelier_request_duration_seconds",  # a histogram has no bare series
        "sum by (model) (atelier_queue_depth)",  # the queue gauge has no model label
        'atelier_jobs{queue="fast"}',  # a label the jobs gauge lacks
        "sum(rate(atelier_errors_total[5m])",  # unbalanced
        "rate(atelier_errors_total)",  # rate needs a range
    ):
        with pytest.raises(AssertionError):
            check_promql(bad, names, "bad")


# Grafana's template variables, replaced by representative values before parsing.
GRAFANA_VARS = {"$__rate_interval": "5m", "$__interval": "1m", "$instance": ".*"}
# Series Prometheus makes itself (alert rules may use them).
PROMETHEUS_SERIES = {"up": {"job", "instance"}}


@dataclass
class PromQLUse:
    metrics: set[str] = field(default_factory=set)
    labels: set[str] = field(default_factory=set)  # matched in selectors or named in by/without


def promql_use(expr: str, where: str) -> PromQLUse:
    """Parse ``expr`` (a syntax error fails the test) and collect the series and labels it refers to."""
    for var, value in GRAFANA_VARS.items():
        expr = expr.replace(var, value)
    try:
        tree = promql_parser.parse(expr)
    except Exception as exc:  # the parser raises ValueError-like errors from Rust
        raise AssertionError(f"{where}: not valid PromQL: {exc}\n{expr}") from None
    use = PromQLUse()

    def visit(node: Any) -> bool:
        if isinstance(node, promql_parser.VectorSelector):
            if node.name:
                use.metrics.add(node.name)
            use.labels |= {m.name for m in node.matchers.matchers if m.name != "__name__"}
        elif isinstance(node, promql_parser.AggregateExpr) and node.modifier is not None:
            use.labels |= set(node.modifier.labels)
        return True

    promql_parser.walk(tree, visit)
    return use


def check_promql(expr: str, exported: dict[str, set[str]], where: str) -> set[str]:
    """Every series is exported by the service (or made by Prometheus), every label exists on one of them."""
    known_series = {**exported, **PROMETHEUS_SERIES}
    use = promql_use(expr, where)
    unknown = use.metrics - known_series.keys()
    assert not unknown, f"{where}: metrics the service does not export: {sorted(unknown)}"
    known = set(SCRAPE_LABELS)
    for name in use.metrics:
        known |= known_series[name]
    missing = use.labels - known
    assert not missing, f"{where}: labels {sorted(missing)} are on none of {sorted(use.metrics)}"
    return use.metrics


def compose_mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> host path of a compose service's volumes (``./src:/dst[:ro]``)."""
    mounts = {}
    for volume in service.get("volumes", []):
        src, dst = volume.split(":")[:2]
        mounts[dst] = src
    return mounts


# --- Grafana ---------------------------------------------------------------------------------------------
def dashboard_targets(panels: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for panel in panels:
        yield from dashboard_targets(panel.get("panels", []))
        for target in panel.get("targets", []):
            yield panel["title"], target


def test_dashboard_queries_only_exported_metrics(exported: dict[str, set[str]]) -> None:
    dash = json.loads((DEPLOY / "grafana" / "dashboards" / "atelier.json").read_text())
    assert dash["uid"] and dash["title"] == "Atelier"
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    used: set[str] = set()
    for title, target in dashboard_targets(dash["panels"]):
        used |= check_promql(target["expr"], exported, f"panel {title!r}")
    # The issue's list: latency per endpoint and model, throughput, batch sizes, queue depth, jobs,
    # errors by reason, execution provider.
    for needed in (
        "atelier_request_duration_seconds_bucket",
        "atelier_request_duration_seconds_count",
        "atelier_batch_size_bucket",
        "atelier_queue_depth",
        "atelier_jobs",
        "atelier_errors_total",
        "atelier_model_info",
        "atelier_inference_duration_seconds_bucket",
    ):
        assert needed in used, f"the dashboard shows nothing from {needed}"
    exprs = " ".join(t["expr"] for _, t in dashboard_targets(dash["panels"]))
    assert "by (le, method)" in exprs and "by (le, model)" in exprs and "by (reason)" in exprs


def test_dashboard_json_is_what_its_script_writes() -> None:
    spec = importlib.util.spec_from_file_location("make_dashboard", DEPLOY / "grafana" / "make_dashboard.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_dashboard"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    on_disk = (DEPLOY / "grafana" / "dashboards" / "atelier.json").read_text()
    assert module.render() == on_disk, "run: python deploy/grafana/make_dashboard.py"


def test_grafana_provisioning_matches_compose() -> None:
    ds = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text())
    (source,) = ds["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090"
    dash = json.loads((DEPLOY / "grafana" / "dashboards" / "atelier.json").read_text())
    ds_var = next(v for v in dash["templating"]["list"] if v["type"] == "datasource")
    assert ds_var["current"]["value"] == source["uid"]
    prov = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "dashboards" / "atelier.yml").read_text())
    path = prov["providers"][0]["options"]["path"]
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    mounts = compose_mounts(compose["services"]["grafana"])
    assert mounts[path] == "./grafana/dashboards"
    assert mounts["/etc/grafana/provisioning"] == "./grafana/provisioning"


# --- Prometheus ------------------------------------------------------------------------------------------
def test_alert_rules_cover_the_issue_and_use_exported_metrics(exported: dict[str, set[str]]) -> None:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    alerts = {r["alert"]: r for g in rules["groups"] for r in g["rules"]}
    for name in ("AtelierHighP99Latency", "AtelierHighErrorRate", "AtelierQueueSaturated", "AtelierNotReady"):
        assert name in alerts, f"missing alert {name}"
    for name, rule in alerts.items():
        check_promql(rule["expr"], exported, f"alert {name}")
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"]
    assert "histogram_quantile(0.99" in alerts["AtelierHighP99Latency"]["expr"]
    assert "atelier_ready" in alerts["AtelierNotReady"]["expr"]


def test_prometheus_scrapes_the_service_and_loads_the_rules() -> None:
    prom = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    job = next(j for j in prom["scrape_configs"] if j["job_name"] == "atelier")
    assert job["metrics_path"] == "/metrics"
    assert job["static_configs"][0]["targets"] == ["atelier:8080"]
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    mounts = compose_mounts(compose["services"]["prometheus"])
    for rule_file in prom["rule_files"]:
        assert rule_file in mounts and (DEPLOY / mounts[rule_file]).is_file()


# --- docker compose --------------------------------------------------------------------------------------
def test_compose_builds_the_dockerfile_targets() -> None:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"atelier", "prometheus", "grafana"} <= services.keys()
    stages = {s.name for s in parse_dockerfile()}
    for name in ("atelier", "atelier-gpu"):
        build = services[name]["build"]
        assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == ROOT / "Dockerfile"
        assert build["target"] in stages
        assert {"8080:8080", "50051:50051"} <= set(services[name]["ports"])
    gpu = services["atelier-gpu"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpu["driver"] == "nvidia" and "gpu" in gpu["capabilities"]
    for service in services.values():
        for volume in service.get("volumes", []):
            if volume.startswith("./"):
                assert (DEPLOY / volume.split(":")[0]).exists(), volume


# --- Kubernetes ------------------------------------------------------------------------------------------
def k8s_objects() -> dict[str, dict[str, Any]]:
    kust = yaml.safe_load((K8S_BASE / "kustomization.yaml").read_text())
    objs: dict[str, dict[str, Any]] = {}
    for resource in kust["resources"]:
        for doc in yaml.safe_load_all((K8S_BASE / resource).read_text()):
            objs[doc["kind"]] = doc
    return objs


def test_k8s_manifests_fit_together() -> None:
    objs = k8s_objects()
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"} <= objs.keys()
    dep = objs["Deployment"]
    pod = dep["spec"]["template"]
    labels = pod["metadata"]["labels"]
    assert dep["spec"]["selector"]["matchLabels"].items() <= labels.items()
    (container,) = pod["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"grpc": 50051, "http": 8080}
    # Readiness on /readyz, liveness through the gRPC health service, startup waits for warm-up.
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["grpc"]["port"] == 50051
    assert container["startupProbe"]["httpGet"]["path"] == "/readyz"
    assert container["args"] == ["atelier", "serve"]
    env = {e["name"]: e["value"] for e in container["env"]}
    pre_stop = float(container["lifecycle"]["preStop"]["exec"]["command"][-1].split("sleep(")[1].rstrip(")"))
    grace = pod["spec"]["terminationGracePeriodSeconds"]
    assert pre_stop + float(env["ATELIER_GRACE_PERIOD_S"]) < grace, "the drain must end before SIGKILL"
    security = pod["spec"]["securityContext"]
    assert security["runAsNonRoot"] is True
    uid = next(s.user for s in parse_dockerfile() if s.name == "cpu").split(":")[0]
    assert str(security["runAsUser"]) == uid
    svc = objs["Service"]
    assert svc["spec"]["selector"].items() <= labels.items()
    assert {(p["port"], p["targetPort"]) for p in svc["spec"]["ports"]} == {(50051, "grpc"), (8080, "http")}
    hpa, pdb = objs["HorizontalPodAutoscaler"], objs["PodDisruptionBudget"]
    assert hpa["spec"]["scaleTargetRef"]["name"] == dep["metadata"]["name"]
    assert hpa["spec"]["minReplicas"] >= 2 and pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_k8s_gpu_overlay_requests_a_gpu() -> None:
    kust = yaml.safe_load((K8S_GPU / "kustomization.yaml").read_text())
    assert (K8S_GPU / kust["resources"][0]).resolve() == K8S_BASE
    assert kust["images"][0]["newTag"] == "gpu"
    patch = yaml.safe_load((K8S_GPU / kust["patches"][0]["path"]).read_text())
    (container,) = patch["spec"]["template"]["spec"]["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed (it renders kustomize)")
@pytest.mark.parametrize("folder", [K8S_BASE, K8S_GPU], ids=["base", "gpu"])
def test_kustomize_renders(folder: Path) -> None:
    out = subprocess.run(
        ["kubectl", "kustomize", str(folder)], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    kinds = [d["kind"] for d in yaml.safe_load_all(out)]
    assert sorted(kinds) == ["Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Service"]

"""The Kubernetes queue overlay, the Prometheus adapter's rule and the KServe InferenceService fit the server
they deploy (no cluster is needed): every object parses and, where Kubernetes publishes a schema, passes it
(``kubernetes-validate``, strict: unknown fields fail); overlays name files that exist; every metric in the
HPA, the adapter, KEDA and the alert rules is one the service exports; ports, probes, commands and
environment variables are the ones the server and its CLI define (tests/deploy_names.py reads them)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import kubernetes_validate
import pytest
import yaml

from service.settings import Settings
from tests import deploy_names as names
from tests.test_deploy import check_promql, promql_use

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
QUEUE = K8S / "overlays" / "queue"
ADAPTER = K8S / "prometheus-adapter" / "values.yaml"
KSERVE = DEPLOY / "kserve" / "inferenceservice.yaml"
# The oldest Kubernetes release these manifests are checked against (autoscaling/v2, grpc probes).
K8S_VERSION = "1.30.0"
Objects = dict[tuple[str, str], dict[str, Any]]


@pytest.fixture(scope="module")
def known() -> dict[str, set[str]]:
    return names.known_series()


@pytest.fixture(scope="module")
def queue() -> Objects:
    return names.kustomize(QUEUE)


def container(obj: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in obj["spec"]["template"]["spec"]["containers"] if c["name"] == name)


def check_k8s(doc: dict[str, Any], where: str) -> bool:
    """Strict schema check; False for kinds Kubernetes publishes no schema for (custom resources)."""
    try:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    except kubernetes_validate.SchemaNotFoundError:
        return False
    except kubernetes_validate.ValidationError as exc:
        raise AssertionError(f"{where}: {doc['kind']} {doc['metadata'].get('name')}: {exc}") from None
    return True


# --- every manifest ---------------------------------------------------------------------------------------
def test_schema_check_rejects_unknown_and_mistyped_fields() -> None:
    dep = names.load_docs(K8S / "base" / "deployment.yaml")[0]
    assert check_k8s(dep, "base")
    typo = yaml.safe_load(yaml.safe_dump(dep))
    typo["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPot"] = 1
    wrong = yaml.safe_load(yaml.safe_dump(dep))
    wrong["spec"]["replicas"] = "two"
    for bad in (typo, wrong):
        with pytest.raises(AssertionError):
            check_k8s(bad, "bad")


def test_every_manifest_parses_and_core_kinds_pass_their_schemas() -> None:
    overlays = [p.parent for p in K8S.rglob("kustomization.yaml")]
    patches = {
        folder / p["path"]
        for folder in overlays
        for p in yaml.safe_load((folder / "kustomization.yaml").read_text()).get("patches", [])
    }
    checked = set()
    for path in sorted([*K8S.rglob("*.yaml"), KSERVE]):
        docs = names.load_docs(path)  # every file parses, each document is an object or a patch list
        if path.name == "kustomization.yaml" or path in patches or path == ADAPTER:
            continue  # kustomize's own files, partial objects (checked once patched, below), Helm values
        for doc in docs:
            if check_k8s(doc, str(path.relative_to(ROOT))):
                checked.add(doc["kind"])
    assert {"Deployment", "Service", "StatefulSet", "ConfigMap", "HorizontalPodAutoscaler"} <= checked
    # Each overlay as applied: the patched objects pass too.
    for folder in overlays:
        for (kind, name), doc in names.kustomize(folder).items():
            check_k8s(doc, f"{folder.relative_to(K8S)}: {kind}/{name}")


def test_queue_overlay_builds_on_the_base_and_names_existing_files(queue: Objects) -> None:
    kust = yaml.safe_load((QUEUE / "kustomization.yaml").read_text())
    assert (QUEUE / kust["resources"][0]).resolve() == K8S / "base"
    listed = {*kust["resources"][1:], *(p["path"] for p in kust["patches"])}
    on_disk = {p.name for p in QUEUE.iterdir()} - {"kustomization.yaml"}
    assert listed == on_disk, "every file of the overlay is used, every file used is there"
    for kind in (
        "Deployment",
        "StatefulSet",
        "ScaledObject",
        "PodMonitor",
        "PrometheusRule",
        "NetworkPolicy",
    ):
        assert kind in {k for k, _ in queue}, kind
    if shutil.which("kubectl") is not None:  # where kubectl is installed, its kustomize agrees with ours
        out = subprocess.run(
            ["kubectl", "kustomize", str(QUEUE)], capture_output=True, text=True, timeout=60, check=True
        ).stdout
        rendered = {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(out)}
        assert rendered.keys() == queue.keys()
        for key, doc in rendered.items():
            assert doc["spec" if "spec" in doc else "data"] == queue[key].get(
                "spec", queue[key].get("data")
            ), key


# --- API and worker ---------------------------------------------------------------------------------------
def env_names(c: dict[str, Any], objs: Objects) -> set[str]:
    found = {e["name"] for e in c.get("env", [])}
    for source in c.get("envFrom", []):
        found |= set(objs[("ConfigMap", source["configMapRef"]["name"])]["data"])
    return found


def test_api_and_worker_read_the_queue_url_and_only_real_settings(queue: Objects) -> None:
    settings = names.setting_env_names()
    api = container(queue[("Deployment", "atelier")], "atelier")
    worker = container(queue[("Deployment", "atelier-worker")], "worker")
    for c in (api, worker):
        env = env_names(c, queue)
        assert names.QUEUE_SETTING in env, c["name"]
        assert env <= settings, f"{c['name']}: not settings: {sorted(env - settings)}"
    url = urlsplit(queue[("ConfigMap", "atelier-queue")]["data"][names.QUEUE_SETTING])
    redis_svc, redis_set = queue[("Service", "atelier-redis")], queue[("StatefulSet", "atelier-redis")]
    # redis://<statefulset>-0.<headless service>:<port>/<db>: the pod's stable DNS name.
    assert url.scheme == "redis" and url.path.strip("/").isdigit()
    assert url.hostname == f"{redis_set['metadata']['name']}-0.{redis_svc['metadata']['name']}"
    assert url.port == redis_svc["spec"]["ports"][0]["port"]


def env_values(c: dict[str, Any], objs: Objects) -> dict[str, str]:
    found: dict[str, str] = {}
    for source in c.get("envFrom", []):
        found.update(objs[("ConfigMap", source["configMapRef"]["name"])]["data"])
    found.update({e["name"]: e["value"] for e in c.get("env", [])})
    return found


def test_environment_values_pass_the_servers_validation_and_drain_in_time(
    queue: Objects, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, cname in (("atelier", "atelier"), ("atelier-worker", "worker")):
        dep = queue[("Deployment", name)]
        s = names.settings_from_env(env_values(container(dep, cname), queue), monkeypatch)
        pod_grace = dep["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        assert s.job_grace_s <= s.grace_period_s < pod_grace, f"{name}: the drain must end before SIGKILL"
    worker = names.settings_from_env(
        env_values(container(queue[("Deployment", "atelier-worker")], "worker"), queue), monkeypatch
    )
    default = Settings.model_fields["job_grace_s"].default
    assert worker.job_grace_s > default, "workers give a running render time to finish"


def test_worker_runs_the_worker_command_and_serves_metrics_where_scraped(queue: Objects) -> None:
    worker_dep = queue[("Deployment", "atelier-worker")]
    pod = worker_dep["spec"]["template"]
    worker = container(worker_dep, "worker")
    args = names.worker_args(worker["args"])
    ports = {p["name"]: p["containerPort"] for p in worker["ports"]}
    assert ports == {"metrics": args.metrics_port}
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(args.metrics_port)
    for probe in ("startupProbe", "livenessProbe"):
        assert worker[probe]["httpGet"] == {"path": "/metrics", "port": "metrics"}, probe
    assert worker_dep["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    # The image and user of the API pods (one image runs both).
    api_pod = queue[("Deployment", "atelier")]["spec"]["template"]
    assert worker["image"] == container(queue[("Deployment", "atelier")], "atelier")["image"]
    assert pod["spec"]["securityContext"]["runAsUser"] == api_pod["spec"]["securityContext"]["runAsUser"]


def test_api_ports_and_probes_are_the_servers_defaults(queue: Objects) -> None:
    s = names.defaults()
    api = container(queue[("Deployment", "atelier")], "atelier")
    ports = {p["name"]: p["containerPort"] for p in api["ports"]}
    assert ports == {"grpc": s.grpc_port, "http": s.http_port}
    assert api["livenessProbe"]["grpc"]["port"] == s.grpc_port
    assert api["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}


def test_podmonitor_scrapes_the_api_and_the_workers(queue: Objects) -> None:
    monitor = queue[("PodMonitor", "atelier")]
    exprs = {e["key"]: set(e["values"]) for e in monitor["spec"]["selector"]["matchExpressions"]}
    endpoints = {e["port"]: e["path"] for e in monitor["spec"]["podMetricsEndpoints"]}
    for name, cname in (("atelier", "atelier"), ("atelier-worker", "worker")):
        pod = queue[("Deployment", name)]["spec"]["template"]
        labels = pod["metadata"]["labels"]
        assert all(labels.get(k) in v for k, v in exprs.items()), f"the PodMonitor misses {name}'s pods"
        port_names = {p["name"] for p in container(queue[("Deployment", name)], cname)["ports"]}
        assert port_names & endpoints.keys(), f"no endpoint of the PodMonitor is a port of {name}"
        assert all(endpoints[p] == "/metrics" for p in port_names & endpoints.keys())


# --- Redis ------------------------------------------------------------------------------------------------
def test_redis_is_a_statefulset_with_a_headless_service_a_volume_and_a_network_policy(queue: Objects) -> None:
    svc, sts = queue[("Service", "atelier-redis")], queue[("StatefulSet", "atelier-redis")]
    assert svc["spec"]["clusterIP"] == "None" and sts["spec"]["serviceName"] == svc["metadata"]["name"]
    assert sts["spec"]["replicas"] == 1, "one primary: the queue needs no replicas (and cannot write to them)"
    labels = sts["spec"]["template"]["metadata"]["labels"]
    assert svc["spec"]["selector"].items() <= labels.items()
    assert sts["spec"]["selector"]["matchLabels"].items() <= labels.items()
    # The API's Service and PDB do not select Redis (same app name, another component).
    for key in (("Service", "atelier"), ("PodDisruptionBudget", "atelier")):
        selector = queue[key]["spec"].get("selector", {})
        selector = selector.get("matchLabels", selector)
        assert not selector.items() <= labels.items(), key
    (redis,) = sts["spec"]["template"]["spec"]["containers"]
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    mounts = {m["name"]: m["mountPath"] for m in redis["volumeMounts"]}
    assert mounts[claim["metadata"]["name"]] == "/data"  # where the official image keeps its files
    args = redis["args"]
    assert args[args.index("--appendonly") + 1] == "yes"
    assert args[args.index("--maxmemory-policy") + 1] == "noeviction"
    policy = queue[("NetworkPolicy", "atelier-redis")]["spec"]
    assert policy["podSelector"]["matchLabels"].items() <= labels.items()
    (rule,) = policy["ingress"]
    (peer,) = rule["from"]
    allowed = {e["key"]: set(e["values"]) for e in peer["podSelector"]["matchExpressions"]}
    for name in ("atelier", "atelier-worker"):
        pod_labels = queue[("Deployment", name)]["spec"]["template"]["metadata"]["labels"]
        assert all(pod_labels.get(k) in v for k, v in allowed.items()), f"{name} may not reach Redis"


# --- autoscaling: KEDA and the HPA's latency metric ----------------------------------------------------------
def test_keda_scales_the_workers_on_the_queue_depth(queue: Objects, known: dict[str, set[str]]) -> None:
    scaled = queue[("ScaledObject", "atelier-worker")]
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    target = scaled["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", "atelier-worker")
    assert 1 <= scaled["spec"]["minReplicaCount"] < scaled["spec"]["maxReplicaCount"]
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "prometheus"
    query = trigger["metadata"]["query"]
    assert check_promql(query, known, "KEDA query") == {"atelier_redis_queue_depth"}
    assert query.replace(" ", "") == "max(atelier_redis_queue_depth)"  # every pod reports the same depth
    assert float(trigger["metadata"]["threshold"]) > 0
    adapter = yaml.safe_load(ADAPTER.read_text())
    assert (
        urlsplit(trigger["metadata"]["serverAddress"]).hostname
        == urlsplit(adapter["prometheus"]["url"]).hostname
    )


def adapter_query(template: str, **labels: str) -> str:
    """An adapter metricsQuery with its Go template filled in as the adapter would for one pod."""
    matchers = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return (
        template.replace("<<.Series>>", "atelier_request_duration_seconds_bucket")
        .replace("<<.LabelMatchers>>", matchers)
        .replace("<<.GroupBy>>", ",".join(labels))
    )


def test_hpa_scales_the_api_on_cpu_and_on_the_adapters_latency_metric(
    queue: Objects, known: dict[str, set[str]]
) -> None:
    hpa = queue[("HorizontalPodAutoscaler", "atelier")]
    by_type = {m["type"]: m for m in hpa["spec"]["metrics"]}
    assert set(by_type) == {"Resource", "Pods"}
    assert by_type["Resource"]["resource"]["name"] == "cpu"
    pods = by_type["Pods"]["pods"]
    assert pods["target"]["type"] == "AverageValue"
    quantity = pods["target"]["averageValue"]
    seconds = float(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)
    alerts = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    p99_alert = next(r for g in alerts["groups"] for r in g["rules"] if r["alert"] == "AtelierHighP99Latency")
    assert 0 < seconds < float(p99_alert["expr"].rsplit(">", 1)[1]), (
        "scale out before the latency alert fires"
    )

    (rule,) = yaml.safe_load(ADAPTER.read_text())["rules"]["custom"]
    assert rule["name"]["as"] == pods["metric"]["name"], "the HPA asks for the metric the adapter serves"
    assert rule["resources"]["overrides"] == {
        "namespace": {"resource": "namespace"},
        "pod": {"resource": "pod"},
    }
    with_k8s = {k: v | names.K8S_SCRAPE_LABELS for k, v in known.items()}
    (series,) = check_promql(rule["seriesQuery"], with_k8s, "adapter seriesQuery")
    assert series.startswith(rule["name"]["matches"].strip("^$"))
    query = adapter_query(rule["metricsQuery"], namespace="atelier", pod="atelier-0")
    assert check_promql(query, with_k8s, "adapter metricsQuery") == {
        "atelier_request_duration_seconds_bucket"
    }
    assert "histogram_quantile(0.9," in query and "by (le," in query.replace("  ", " ")
    assert {"method", "le", "namespace", "pod"} <= promql_use(query, "adapter").labels


def test_queue_alerts_use_exported_metrics_and_match_the_prometheus_rule(
    queue: Objects, known: dict[str, set[str]]
) -> None:
    groups = yaml.safe_load((DEPLOY / "prometheus" / "alerts-queue.yml").read_text())["groups"]
    used: set[str] = set()
    for rule in (r for g in groups for r in g["rules"]):
        used |= check_promql(rule["expr"], known, f"alert {rule['alert']}")
        assert rule["labels"]["severity"] in {"warning", "critical"} and rule["annotations"]["summary"]
    assert set(names.QUEUE_SERIES) <= used, "an alert for each queue metric"
    assert queue[("PrometheusRule", "atelier-queue")]["spec"]["groups"] == groups, (
        "copy alerts-queue.yml over"
    )


async def status_of(path: str) -> int:
    """GET ``path`` from the REST app of a plane never started (ASGI, no lifespan, no socket)."""
    transport = httpx.ASGITransport(app=names.unstarted_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://pod") as client:
        return (await client.get(path)).status_code


# --- KServe ---------------------------------------------------------------------------------------------------
def test_kserve_inferenceservice_serves_the_v2_protocol_on_our_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    (isvc,) = names.load_docs(KSERVE)
    assert (isvc["apiVersion"], isvc["kind"]) == ("serving.kserve.io/v1beta1", "InferenceService")
    predictor = isvc["spec"]["predictor"]
    (c,) = predictor["containers"]
    assert c["name"] == "kserve-container"  # the name KServe looks its predictor container up by
    assert c["args"] == ["atelier", "serve"]
    env = {e["name"]: e["value"] for e in c["env"]}
    assert env.pop("PROTOCOL") == "v2"  # a custom predictor's protocol version (KServe reads this variable)
    assert set(env) <= names.setting_env_names(), sorted(set(env) - names.setting_env_names())
    s = names.settings_from_env(env, monkeypatch)  # the values pass the server's own validation
    http_port, grpc_port = (
        int(env.get("ATELIER_HTTP_PORT", s.http_port)),
        int(env.get("ATELIER_GRPC_PORT", s.grpc_port)),
    )
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"http1": http_port, "h2c": grpc_port}
    assert c["ports"][0]["name"] == "http1", "RawDeployment maps Service port 80 to the first port: REST"
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "RawDeployment"
    assert names.V2_GRPC_SERVICE in names.grpc_services()
    served = names.v2_rest_paths()
    assert {"/v2/health/live", "/v2/health/ready", "/v2/models/{name}/infer"} <= served
    for probe, path in (
        ("startupProbe", "/v2/health/ready"),
        ("readinessProbe", "/v2/health/ready"),
        ("livenessProbe", "/v2/health/live"),
    ):
        assert c[probe]["httpGet"] == {"path": path, "port": "http1"}, probe
    assert str(http_port) == isvc["metadata"]["annotations"]["prometheus.kserve.io/port"]
    if "/v2 REST routes" not in names.pending():
        # The probes' answers before the models load: alive (no restart), not ready (no traffic).
        assert asyncio.run(status_of("/v2/health/live")) == 200
        assert asyncio.run(status_of("/v2/health/ready")) == 503
    # The predictor is a pod spec plus KServe's component fields: the pod part passes Kubernetes' schema.
    component = {"minReplicas", "maxReplicas", "scaleMetric", "scaleTarget"}
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "atelier"},
        "spec": {k: v for k, v in predictor.items() if k not in component},
    }
    assert check_k8s(pod, "kserve predictor")
    assert predictor["minReplicas"] <= predictor["maxReplicas"]

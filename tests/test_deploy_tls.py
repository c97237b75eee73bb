"""The Kubernetes TLS overlay fits the server it deploys: its environment variables are settings, the files
they name are where the Secret is mounted, and every probe is an ``atelier health`` command line the real
CLI parser accepts, over mTLS with those files (Kubernetes' own gRPC probe cannot speak TLS)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from service.cli import build_parser
from service.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
TLS = ROOT / "deploy" / "k8s" / "overlays" / "tls"
PROBES = ("startupProbe", "readinessProbe", "livenessProbe")


def overlay() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    kust = yaml.safe_load((TLS / "kustomization.yaml").read_text())
    assert (TLS / kust["resources"][0]).resolve() == ROOT / "deploy" / "k8s" / "base"
    merge, probes = (yaml.safe_load((TLS / p["path"]).read_text()) for p in kust["patches"])
    return merge, probes


def test_tls_overlay_mounts_what_the_settings_name() -> None:
    merge, probes = overlay()
    pod = merge["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert set(env) == {"ATELIER_TLS_CERT", "ATELIER_TLS_KEY", "ATELIER_TLS_CLIENT_CA"}
    for name in env:
        assert name.removeprefix("ATELIER_").lower() in Settings.model_fields, name
    (mount,) = container["volumeMounts"]
    (volume,) = pod["volumes"]
    assert mount["name"] == volume["name"] and volume["secret"]["secretName"] == "atelier-tls"
    for path in env.values():
        assert Path(path).parent == Path(mount["mountPath"]), path
        assert Path(path).name in ("ca.crt", "tls.crt", "tls.key")  # a kubernetes.io/tls Secret + ca.crt

    replaced = {op["path"].rsplit("/", 1)[-1]: op for op in probes}
    assert set(replaced) == set(PROBES) and all(op["op"] == "replace" for op in probes)
    parser = build_parser()
    for probe, op in replaced.items():
        command = op["value"]["exec"]["command"]
        assert command[:2] == ["atelier", "health"], probe
        args = parser.parse_args(command[1:])
        assert str(args.tls_ca) == env["ATELIER_TLS_CLIENT_CA"], probe
        assert (str(args.tls_cert), str(args.tls_key)) == (env["ATELIER_TLS_CERT"], env["ATELIER_TLS_KEY"])
        assert args.live is (probe == "livenessProbe"), probe  # a draining pod is not ready, but alive
        assert args.timeout < op["value"]["timeoutSeconds"], probe


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed (it renders kustomize)")
def test_tls_overlay_renders_with_exec_probes_only() -> None:
    out = subprocess.run(
        ["kubectl", "kustomize", str(TLS)], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    (deployment,) = [d for d in yaml.safe_load_all(out) if d["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    for probe in PROBES:
        assert set(container[probe]) - {"periodSeconds", "timeoutSeconds", "failureThreshold"} == {"exec"}

"""Writes deploy/grafana/dashboards/atelier.json, the Grafana dashboard of the service.

    python deploy/grafana/make_dashboard.py            # rewrite the JSON after editing the panels here

Panels are described here rather than edited in Grafana's JSON by hand; tests/test_deploy.py fails when
the checked-in JSON differs from what this script writes, and checks every query against the metrics the
service exports.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "dashboards" / "atelier.json"
DS = {"type": "prometheus", "uid": "${datasource}"}
SEL = 'instance=~"$instance"'  # every query follows the dashboard's instance picker
RI = "$__rate_interval"


def q(expr: str, legend: str = "", **extra: Any) -> dict[str, Any]:
    return {"expr": expr, "legendFormat": legend, **extra}


def quantiles(
    metric: str, by: str, qs: tuple[float, ...], legend: str, where: str = SEL
) -> list[dict[str, Any]]:
    """``histogram_quantile`` per quantile, grouped by ``le`` and ``by``."""
    return [
        q(
            f"histogram_quantile({p}, sum by (le, {by}) (rate({metric}_bucket{{{where}}}[{RI}])))",
            f"p{round(p * 100)} {legend}",
        )
        for p in qs
    ]


@dataclass
class Dashboard:
    panels: list[dict[str, Any]] = field(default_factory=list)
    y: int = 0  # top of the current row of panels

    def row(self, title: str) -> None:
        self.panels.append(
            {
                "id": len(self.panels) + 1,
                "type": "row",
                "title": title,
                "collapsed": False,
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": self.y},
                "panels": [],
            }
        )
        self.y += 1

    def add(
        self,
        title: str,
        targets: list[dict[str, Any]],
        kind: str = "timeseries",
        x: int = 0,
        w: int = 12,
        h: int = 8,
        unit: str | None = None,
        desc: str = "",
        **extra: Any,
    ) -> None:
        panel: dict[str, Any] = {
            "id": len(self.panels) + 1,
            "type": kind,
            "title": title,
            "description": desc,
            "datasource": DS,
            "gridPos": {"h": h, "w": w, "x": x, "y": self.y},
            "targets": [{"datasource": DS, "refId": chr(65 + i), **t} for i, t in enumerate(targets)],
            "fieldConfig": {"defaults": {"unit": unit} if unit else {}, "overrides": []},
            "options": {},
        }
        if kind == "timeseries":
            panel["options"] = {
                "legend": {"displayMode": "table", "placement": "right", "calcs": ["lastNotNull", "max"]},
                "tooltip": {"mode": "multi", "sort": "desc"},
            }
        panel.update(extra)
        self.panels.append(panel)

    def next_row(self, h: int = 8) -> None:
        self.y += h


def build() -> dict[str, Any]:
    d = Dashboard()
    requests = f"rate(atelier_request_duration_seconds_count{{{SEL}}}[{RI}])"

    d.row("Overview")
    d.add(
        "Ready instances",
        [q(f"sum(atelier_ready{{{SEL}}})", "ready")],
        "stat",
        0,
        4,
        5,
        desc="Instances whose models are loaded and warmed up (atelier_ready = 1).",
    )
    d.add("Requests / s", [q(f"sum({requests})", "req/s")], "stat", 4, 4, 5, unit="reqps")
    d.add(
        "Error ratio",
        [q(f"sum(rate(atelier_errors_total{{{SEL}}}[{RI}])) / clamp_min(sum({requests}), 1e-9)", "errors")],
        "stat",
        8,
        4,
        5,
        unit="percentunit",
    )
    d.add(
        "In flight",
        [q(f"sum by (transport) (atelier_requests_in_flight{{{SEL}}})", "{{transport}}")],
        "stat",
        12,
        4,
        5,
    )
    d.add(
        "Jobs queued / running", [q(f"sum by (state) (atelier_jobs{{{SEL}}})", "{{state}}")], "stat", 16, 4, 5
    )
    d.add(
        "Model load failures",
        [q(f"sum(atelier_model_load_failures_total{{{SEL}}})", "failures")],
        "stat",
        20,
        4,
        5,
    )
    d.next_row(5)

    d.row("Latency and throughput")
    d.add(
        "Throughput by method",
        [q(f"sum by (transport, method) ({requests})", "{{transport}} {{method}}")],
        unit="reqps",
    )
    d.add(
        "Latency p50 / p90 / p99 by method",
        quantiles("atelier_request_duration_seconds", "method", (0.5, 0.9, 0.99), "{{method}}"),
        x=12,
        unit="s",
    )
    d.next_row()
    d.add(
        "Latency p99 by model",
        quantiles("atelier_request_duration_seconds", "model", (0.99,), "{{model}}", f'{SEL}, model!=""'),
        unit="s",
    )
    d.add(
        "Inference time p50 / p99 by model and provider (one ONNX Runtime run)",
        quantiles(
            "atelier_inference_duration_seconds", "model, provider", (0.5, 0.99), "{{model}} ({{provider}})"
        ),
        x=12,
        unit="s",
    )
    d.next_row()

    d.row("Batching and queues")
    d.add(
        "Mean batch size by model",
        [
            q(
                f"sum by (model) (rate(atelier_batch_size_sum{{{SEL}}}[{RI}])) / "
                f"clamp_min(sum by (model) (rate(atelier_batch_size_count{{{SEL}}}[{RI}])), 1e-9)",
                "{{model}}",
            )
        ],
        w=8,
        desc="Requests per ONNX Runtime run: 1 means no batching happens (low load or batching off).",
    )
    d.add(
        "Batch size distribution",
        [q(f"sum by (le) (increase(atelier_batch_size_bucket{{{SEL}}}[{RI}]))", "{{le}}", format="heatmap")],
        "heatmap",
        8,
        8,
        options={"calculate": False, "yAxis": {"unit": "short"}},
    )
    d.add("Queue depth", [q(f"sum by (queue) (atelier_queue_depth{{{SEL}}})", "{{queue}}")], x=16, w=8)
    d.next_row()
    d.add(
        "Queue wait p50 / p90",
        quantiles("atelier_queue_wait_seconds", "queue", (0.5, 0.9), "{{queue}}"),
        unit="s",
    )
    d.add(
        "Requests in flight",
        [q(f"sum by (transport) (atelier_requests_in_flight{{{SEL}}})", "{{transport}}")],
        x=12,
        w=6,
    )
    d.add(
        "Refused: queue full (429 / RESOURCE_EXHAUSTED)",
        [q(f"sum by (queue) (rate(atelier_rejected_total{{{SEL}}}[{RI}]))", "{{queue}}")],
        x=18,
        w=6,
        unit="reqps",
        desc="Admission control refusals per queue; any sustained value means add capacity.",
    )
    d.next_row()

    d.row("Jobs (Gatys, DeepDream, ...)")
    d.add("Jobs by state", [q(f"sum by (kind, state) (atelier_jobs{{{SEL}}})", "{{kind}} {{state}}")], w=8)
    d.add(
        "Jobs finished / min",
        [
            q(
                f"sum by (kind, state) (rate(atelier_jobs_finished_total{{{SEL}}}[{RI}])) * 60",
                "{{kind}} {{state}}",
            )
        ],
        x=8,
        w=8,
    )
    d.add(
        "Job duration p50 / p90",
        quantiles("atelier_job_duration_seconds", "kind", (0.5, 0.9), "{{kind}}"),
        x=16,
        w=8,
        unit="s",
    )
    d.next_row()

    d.row("Errors")
    d.add(
        "Errors by reason",
        [q(f"sum by (reason) (rate(atelier_errors_total{{{SEL}}}[{RI}]))", "{{reason}}")],
        unit="reqps",
    )
    d.add(
        "Errors by method and transport",
        [
            q(
                f"sum by (transport, method) (rate(atelier_errors_total{{{SEL}}}[{RI}]))",
                "{{transport}} {{method}}",
            )
        ],
        x=12,
        unit="reqps",
    )
    d.next_row()

    d.row("Models and execution providers")
    d.add(
        "Loaded models (execution provider, precision)",
        [
            q(
                f"max by (model, version, arch, provider, precision) (atelier_model_info{{{SEL}}})",
                format="table",
                instant=True,
            )
        ],
        "table",
        desc="The ONNX Runtime provider each model actually runs on (CUDAExecutionProvider or the CPU "
        "fallback).",
        transformations=[{"id": "organize", "options": {"excludeByName": {"Time": True, "Value": True}}}],
    )
    d.add(
        "Model load and warm-up time",
        [
            q(f"max by (model) (atelier_model_load_seconds{{{SEL}}})", "load {{model}}"),
            q(f"max by (model) (atelier_model_warmup_seconds{{{SEL}}})", "warm-up {{model}}"),
        ],
        "bargauge",
        12,
        unit="s",
        options={"orientation": "horizontal", "displayMode": "gradient"},
    )
    d.next_row()

    return {
        "uid": "atelier-overview",
        "title": "Atelier",
        "description": "Atelier model serving: latency, throughput, batching, queues, jobs, errors, models.",
        "tags": ["atelier"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "30s",
        "time": {"from": "now-1h", "to": "now"},
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Data source",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {"text": "Prometheus", "value": "prometheus"},
                    "hide": 0,
                },
                {
                    "name": "instance",
                    "label": "Instance",
                    "type": "query",
                    "datasource": DS,
                    "query": {"query": "label_values(atelier_ready, instance)", "refId": "instance"},
                    "definition": "label_values(atelier_ready, instance)",
                    "includeAll": True,
                    "multi": True,
                    "allValue": ".*",
                    "refresh": 2,
                    "sort": 1,
                    "current": {"text": "All", "value": "$__all"},
                    "hide": 0,
                },
            ]
        },
        "annotations": {"list": []},
        "panels": d.panels,
    }


def render() -> str:
    return json.dumps(build(), indent=2) + "\n"


if __name__ == "__main__":
    OUT.write_text(render())
    print(f"wrote {OUT}")

#!/usr/bin/env python
"""Soak test: mixed traffic from 16 clients against one server for a bounded time, watching for leaks.

Traffic (each client a thread with its own HTTP client and gRPC channel, weighted at random): stylize over
REST and gRPC (256x256 JPEG), classify, gradcam saliency, small Gatys jobs (REST, polled, half of them
cancelled with DELETE; gRPC streams, some cut off early), and bad inputs (garbage bytes, unknown styles,
out-of-range options) that must be refused with a 4xx. Every ``--interval`` seconds the server's RSS
(``/proc/PID/status``) and the window's stylize p50/p99 are recorded; 5xx and INTERNAL/UNKNOWN are counted
as server errors. The figures go to ``OUT.csv``, ``OUT.png`` and ``OUT.md`` (``--out`` is a path stem).

By default it starts ``python -m service serve`` itself (the models in ``--models-dir``, free ports on
127.0.0.1) and stops it at the end; ``--pid P --grpc HOST:PORT --url http://HOST:PORT`` soak a running one.

    python scripts/soak.py --minutes 30 --out docs/bench/soak
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import grpc  # noqa: E402
import httpx  # noqa: E402
import numpy as np  # noqa: E402
import soak_report as report  # noqa: E402

from service.api.v1 import atelier_pb2 as pb  # noqa: E402
from service.api.v1 import atelier_pb2_grpc as pb_grpc  # noqa: E402
from service.core.imageio import encode_image  # noqa: E402

LISTENING = re.compile(r"listening: gRPC on [\d.]+:(\d+), HTTP on [\d.]+:(\d+)")
C = grpc.StatusCode
SERVER_FAULT = {C.INTERNAL, C.UNKNOWN, C.DATA_LOSS, C.UNIMPLEMENTED}
# Server settings for the soak: Gatys small enough that a job takes about a second on a busy CPU.
SERVER_ENV = {"ATELIER_MAX_SIDE_SLOW": "128", "ATELIER_JOB_QUEUE_LIMIT": "4", "ATELIER_LOG_LEVEL": "WARNING"}
MIX = {  # kind -> weight
    "rest_stylize": 28, "grpc_stylize": 28, "rest_classify": 6, "grpc_saliency": 5, "rest_saliency": 3,
    "rest_gatys_job": 3, "grpc_gatys_stream": 2, "bad_rest": 13, "bad_grpc": 12,
}  # fmt: skip
FAST = {"rest_stylize", "grpc_stylize"}


@dataclass
class Record:
    """What the clients saw, shared under one lock; the sampler drains it each window."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    window: list[tuple[str, str, float, float]] = field(default_factory=list)  # kind, outcome, t, ms
    fast: list[tuple[float, float]] = field(default_factory=list)  # (t, ms) of every stylize call
    counts: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    def add(self, kind: str, outcome: str, t: float, ms: float, detail: str = "") -> None:
        with self.lock:
            self.window.append((kind, outcome, t, ms))
            self.counts[f"{kind} {outcome}"] += 1
            if kind in FAST and outcome == "ok":
                self.fast.append((t, ms))
            # A refusal of a well-formed call is as telling as a 5xx (a broken request in this script,
            # or a server that refuses what it should serve), so both are listed in soak.md.
            unexpected = outcome == "server_error" or (
                outcome == "client_error" and not kind.startswith("bad_")
            )
            if unexpected and len(self.failures) < 20:
                self.failures.append(f"{kind} {outcome}: {detail[:200]}")


def http_outcome(status: int) -> str:
    if status < 400:
        return "ok"
    if status == 429:
        return "rejected"
    return "client_error" if status < 500 else "server_error"


def grpc_outcome(code: grpc.StatusCode) -> str:
    if code is C.OK:
        return "ok"
    if code is C.RESOURCE_EXHAUSTED:
        return "rejected"
    return "server_error" if code in SERVER_FAULT else "client_error"


class Client:
    def __init__(self, i: int, url: str, target: str, rec: Record, t0: float, styles: list[str]) -> None:
        self.rng = random.Random(i)
        self.http = httpx.Client(base_url=url, timeout=120)
        self.channel = grpc.insecure_channel(target)
        self.stub = pb_grpc.AtelierStub(self.channel)
        self.rec, self.t0, self.styles = rec, t0, styles
        rng = np.random.default_rng(i)
        self.photo = encode_image(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8), "jpeg", 90)
        self.small = encode_image(rng.integers(0, 256, (96, 96, 3), dtype=np.uint8), "jpeg", 90)

    def run(self, stop: threading.Event) -> None:
        kinds, weights = list(MIX), list(MIX.values())
        while not stop.is_set():
            kind = self.rng.choices(kinds, weights)[0]
            start = time.monotonic()
            try:
                outcome, detail = getattr(self, kind)()
            except grpc.RpcError as exc:
                outcome, detail = grpc_outcome(exc.code()), f"{exc.code().name}: {exc.details()}"
            except httpx.HTTPError as exc:  # connection refused/reset: the server failed
                outcome, detail = "server_error", repr(exc)
            end = time.monotonic()
            self.rec.add(kind, outcome, end - self.t0, (end - start) * 1e3, detail)
        self.http.close()
        self.channel.close()

    def _img(self, path: str, data: bytes, **params: str | int) -> httpx.Response:
        return self.http.post(path, params=params, content=data, headers={"Content-Type": "image/jpeg"})

    def rest_stylize(self) -> tuple[str, str]:
        r = self._img("/v1/stylize", self.photo, style=self.rng.choice(self.styles), format="jpeg")
        return http_outcome(r.status_code), r.text[:200] if r.status_code >= 400 else ""

    def grpc_stylize(self) -> tuple[str, str]:
        req = pb.StylizeRequest(
            image=self.photo, style=self.rng.choice(self.styles), format=pb.IMAGE_FORMAT_JPEG
        )
        self.stub.Stylize(req, timeout=120)
        return "ok", ""

    def rest_classify(self) -> tuple[str, str]:
        r = self._img("/v1/classify", self.small, top_k=3)
        return http_outcome(r.status_code), r.text[:200]

    def rest_saliency(self) -> tuple[str, str]:
        r = self._img("/v1/saliency", self.small, method="gradcam", output="heatmap")
        return http_outcome(r.status_code), r.text[:200]

    def grpc_saliency(self) -> tuple[str, str]:
        self.stub.Saliency(pb.SaliencyRequest(image=self.small, method="gradient"), timeout=120)
        return "ok", ""

    def rest_gatys_job(self) -> tuple[str, str]:
        files = [("content", ("c.jpg", self.small)), ("style", ("s.jpg", self.photo))]
        r = self.http.post("/v1/jobs/gatys", files=files, data={"options": '{"size": 64, "steps": 4}'})
        if r.status_code != 202:
            return http_outcome(r.status_code), r.text[:200]
        job = r.json()["id"]
        if self.rng.random() < 0.5:  # cancel half of them, queued or running
            d = self.http.delete(f"/v1/jobs/{job}")
            return http_outcome(d.status_code), d.text[:200]
        for _ in range(600):  # poll until it is done (bounded: 60 s)
            s = self.http.get(f"/v1/jobs/{job}")
            if s.status_code != 200 or s.json()["state"] in ("succeeded", "failed", "cancelled"):
                break
            time.sleep(0.1)
        res = self.http.get(f"/v1/jobs/{job}/result")
        return http_outcome(res.status_code), res.text[:200] if res.status_code >= 400 else ""

    def grpc_gatys_stream(self) -> tuple[str, str]:
        opts = pb.GatysRequest().options
        opts.update({"size": 64, "steps": 4})
        req = pb.GatysRequest(content=self.small, styles=[self.photo], options=opts)
        stream = self.stub.Gatys(req, timeout=120)
        if self.rng.random() < 0.3:  # walk away after the first event: the server must cancel the job
            next(iter(stream), None)
            stream.cancel()
            return "ok", ""
        events = list(stream)
        return ("ok", "") if events and events[-1].HasField("result") else ("server_error", "no result")

    def bad_rest(self) -> tuple[str, str]:
        choice = self.rng.randrange(4)
        if choice == 0:
            r = self._img("/v1/stylize", self.rng.randbytes(512), style=self.styles[0])
        elif choice == 1:
            r = self._img("/v1/stylize", self.photo, style="no_such_style")
        elif choice == 2:
            r = self._img("/v1/stylize", self.photo, style=self.styles[0], strength=3)
        else:
            r = self.http.post(
                "/v1/jobs/deepdream", files={"image": ("x.jpg", self.small)}, data={"octaves": '"x"'}
            )
        out = http_outcome(r.status_code)
        return ("client_error" if out == "ok" else out), r.text[
            :200
        ]  # a bad input accepted is odd, not fatal

    def bad_grpc(self) -> tuple[str, str]:
        choice = self.rng.randrange(3)
        if choice == 0:
            req = pb.StylizeRequest(image=self.rng.randbytes(512), style=self.styles[0])
        elif choice == 1:
            req = pb.StylizeRequest(image=self.photo, style=self.styles[0], strength=-1)
        else:
            req = pb.StylizeRequest(image=self.photo, style=self.styles[0], quality=1000)
        self.stub.Stylize(req, timeout=120)
        return "client_error", "accepted a bad request"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def start_server(models_dir: Path, log_path: Path) -> tuple[subprocess.Popen[bytes], str, str]:
    env = {**os.environ, "ATELIER_HOST": "127.0.0.1", "ATELIER_GRPC_PORT": "0", "ATELIER_HTTP_PORT": "0"}
    env.update({"ATELIER_MODELS_DIR": str(models_dir), **SERVER_ENV, "ATELIER_LOG_LEVEL": "INFO"})
    log = log_path.open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "service", "serve"], cwd=ROOT, env=env, stderr=log, stdout=log
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        m = LISTENING.search(log_path.read_text(errors="replace"))
        if m:
            url = f"http://127.0.0.1:{m.group(2)}"
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                        return proc, f"127.0.0.1:{m.group(1)}", url
                except httpx.HTTPError:
                    pass
                time.sleep(0.5)
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"the server did not become ready; its log: {log_path}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=30.0)
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--interval", type=float, default=10.0, help="seconds per sample")
    p.add_argument(
        "--warmup-minutes", type=float, default=None, help="default: a sixth of the run, at most 5"
    )
    p.add_argument("--out", type=Path, default=Path("/tmp/atelier-soak/soak"), help="stem of .md .csv .png")
    p.add_argument("--models-dir", type=Path, default=ROOT / "models")
    p.add_argument("--pid", type=int, help="soak a running server: its process id (with --grpc, --url)")
    p.add_argument("--grpc", help="HOST:PORT of a running server")
    p.add_argument("--url", help="http://HOST:PORT of a running server")
    p.add_argument("--note", default="", help="a line about the machine for soak.md (e.g. 'busy, shared')")
    args = p.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    csv_path, png_path, md_path = (
        args.out.with_name(f"{args.out.name}.{ext}") for ext in ("csv", "png", "md")
    )
    warmup_s = 60 * (args.warmup_minutes if args.warmup_minutes is not None else min(5.0, args.minutes / 6))

    proc = None
    if args.pid:
        if not (args.grpc and args.url):
            p.error("--pid needs --grpc and --url")
        pid, target, url = args.pid, args.grpc, args.url
    else:
        log_path = Path(tempfile.mkdtemp(prefix="atelier-soak-")) / "server.log"  # not beside the figures
        print(f"server log: {log_path}")
        proc, target, url = start_server(args.models_dir, log_path)
        pid = proc.pid
    styles = [s["name"] for s in httpx.get(f"{url}/v1/styles", timeout=30).json()["styles"]][:4]
    print(f"soaking pid {pid} (gRPC {target}, HTTP {url}) for {args.minutes} min with {args.clients} clients")

    rec, stop, t0 = Record(), threading.Event(), time.monotonic()
    clients = [Client(i, url, target, rec, t0, styles) for i in range(args.clients)]
    threads = [threading.Thread(target=c.run, args=(stop,), daemon=True) for c in clients]
    for t in threads:
        t.start()
    samples: list[report.Sample] = []
    end = t0 + args.minutes * 60
    try:
        while time.monotonic() < end:
            time.sleep(max(0.0, min(args.interval, end - time.monotonic())))
            with rec.lock:
                window, rec.window = rec.window, []
            fast = [ms for kind, outcome, _, ms in window if kind in FAST and outcome == "ok"]
            outcomes = Counter(outcome for _, outcome, _, _ in window)
            s = report.Sample(
                time.monotonic() - t0, rss_mb(pid), len(window), report.percentile(fast, 50),
                report.percentile(fast, 99), outcomes["client_error"], outcomes["rejected"],
                outcomes["server_error"],
            )  # fmt: skip
            samples.append(s)
            print(f"{s.t_s:7.0f}s rss {s.rss_mb:7.1f} MB  {s.requests:5d} calls  p50 {s.p50_ms:6.0f} ms  "
                  f"p99 {s.p99_ms:6.0f} ms  5xx {s.server_errors}", flush=True)  # fmt: skip
    finally:
        stop.set()
        for t in threads:
            t.join(130)
        if proc is not None:
            proc.send_signal(signal.SIGINT if os.name != "posix" else signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()

    phase_list = report.phases(samples, rec.fast, warmup_s)
    v = report.verdict(samples, phase_list, warmup_s)
    report.write_csv(csv_path, samples)
    title = f"{args.clients} clients, {args.minutes:g} min, {platform.node() or 'host'}"
    report.plot(png_path, samples, warmup_s, title)
    context = (
        f"`python scripts/soak.py --minutes {args.minutes:g} --clients {args.clients}` on {platform.platform()}, "
        f"{os.cpu_count()} CPUs{', ' + args.note if args.note else ''}; server: "
        + ("started by the script (`atelier serve`, models in "
           f"`{os.path.relpath(args.models_dir, ROOT)}`, {', '.join(f'{k}={v}' for k, v in SERVER_ENV.items())})"
           if proc is not None else f"pid {pid}")
        + f". Styles: {', '.join(styles)}."
    )  # fmt: skip
    md = report.markdown(samples, phase_list, v, warmup_s, context, dict(rec.counts), args.out.name)
    if rec.failures:
        md += (
            "\nFirst unexpected answers (5xx, or a 4xx to a well-formed call):\n\n"
            + "\n".join(f"- `{f}`" for f in rec.failures)
            + "\n"
        )
    md_path.write_text(md)
    print(md)
    return 0 if v.passed else 1


if __name__ == "__main__":
    sys.exit(main())

"""The serving layer: one data plane, two transports. See docs/ARCHITECTURE.md.

* ``dataplane``: ``DataPlane``, the one object the transports call (fast path, jobs, readiness, metrics);
  ``config`` its settings as plain values, ``results`` what it returns, ``loading`` model start-up.
* ``batching``: micro-batching of same-model, same-size stylize requests into one ONNX Runtime run.
* ``jobs`` / ``job``: the slow path's bounded worker pool, progress events, cancellation, retention;
  ``renders``: the Gatys / DeepDream / saliency work it runs; ``options``: option dicts to dataclasses.
* ``errormap``: core error class -> gRPC status and HTTP status; ``tracking``: per-call metrics, deadlines.
* ``metrics``: every Prometheus collector, on one registry per server.
* ``grpc_server``: the ``atelier.v1.Atelier`` servicer and health; ``http_app`` + ``rest``: HTTP;
  ``app``: both servers on one event loop, start-up order and graceful stop.
"""

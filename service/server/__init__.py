"""The serving layer: one data plane, two transports. See docs/ARCHITECTURE.md.

* ``plane``: ``DataPlane``, the one object the transports call (fast path, jobs, readiness, metrics);
  ``config`` its settings as plain values, ``results`` what it returns, ``loading`` model start-up,
  ``batching`` micro-batching of stylize requests, ``slow_jobs`` the Gatys / DeepDream / saliency work it
  runs as jobs, ``options`` option dicts to dataclasses, ``tracking`` per-call metrics and deadlines.
* ``jobs``: the slow path's bounded worker pool (``manager``) and one job's state and events (``job``).
* ``transport.grpc``: the ``atelier.v1.Atelier`` servicer and health; ``transport.rest``: the HTTP app,
  its routes, uploads, errors, schemas and SSE framing.
* ``errors``: core error class -> gRPC status and HTTP status; ``metrics``: every Prometheus collector.
* ``app``: both servers on one event loop, start-up order and graceful stop.
"""

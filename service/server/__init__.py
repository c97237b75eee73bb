"""The serving layer: one data plane (admission control, micro-batching, jobs, metrics) and two transports
(gRPC in ``grpc_server``, REST in ``rest`` + ``http_app``). See docs/ARCHITECTURE.md."""

"""Telemetry of the engine: what Istio's sidecar reports, in Istio's and Envoy's shapes.

    metrics    a small Prometheus registry and Istio's standard metrics (istio_*)
    stats      Envoy's own stats (cluster.<name>.upstream_rq_total ...), /stats and
               /stats/prometheus text
    accesslog  Envoy's access log formats (default text and JSON), compiled once,
               written without blocking the event loop
    tracing    x-request-id, B3 and W3C trace context, Zipkin v2 spans and their emitter
    headers    a str view of the engine's byte-pair header lists (no per-request copy)

Everything here runs on the request path, so recording is plain dict/attribute updates
on precomputed keys; rendering and I/O happen off it.
"""

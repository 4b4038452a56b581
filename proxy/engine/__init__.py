"""The Envoy-like L7 proxy engine (issue 6): `mkp proxy --config FILE` runs it from an
Envoy v3 static bootstrap; the mesh control plane will later feed it the same model.

    config/     the Envoy v3 bootstrap subset: parsing, validation, the typed model
    router      virtual hosts and routes: which route a request takes
    http1       HTTP/1.1 downstream and upstream protocols (httptools), streaming
    upstream    upstream connections and per-cluster pools
    cluster, lb, outlier, circuit, retry, ratelimit, fault
                what happens on the upstream side: endpoints, load balancing,
                outlier detection, circuit breakers, retries, local rate limits, faults
    tls         TLS and mTLS contexts, SPIFFE identities, plaintext/TLS sniffing
    telemetry/  Istio's standard metrics, Envoy stats, access logs, tracing
"""

"""The L4 service proxy (`mkp kube-proxy`): kube-proxy's job done in userspace, per node.

Modules, lowest first:

    endpoints   which EndpointSlice endpoints a Service port uses (pure)
    model       frontends and endpoint groups one node serves for a Service (pure)
    balancer    round robin and ClientIP session affinity
    tcp, udp    forwarding: spliced TCP connections, UDP flows per client
    metrics     /metrics and /healthz content
    healthcheck kube-proxy's healthCheckNodePort answer
    listeners   sockets per frontend (SO_BINDTODEVICE), the target each asks
    proxier     informers + work queue + reconcile: the proxy itself
    process     the `mkp kube-proxy` process: `main`, `run_proxy`
    cli         the click command `proxy_command` (light: imports the rest when run)
"""

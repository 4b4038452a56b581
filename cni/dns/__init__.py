"""Cluster DNS for Services and pods, as CoreDNS's kubernetes plugin gives it (`mkp dns`).

    cli        the process: informers, listeners, the kube-dns endpoint, metrics
    watch      informers -> work queue -> the zone (level-triggered)
    kubedns    the kube-dns Service and its hand-made EndpointSlice
    records    one Service + its slices -> encoded records per name (pure)
    zone       the name index and the answer to a query
    server     UDP and TCP listeners
    wire       reading queries and assembling responses
    metrics    coredns_dns_* metrics, /health, /ready

The server runs on the host; `mkp dns` ensures the kube-dns Service (no selector) and an
EndpointSlice pointing at it, so the service proxy forwards the cluster DNS address to it.
It answers only the cluster domain and the reverse zones and never forwards a query.
"""

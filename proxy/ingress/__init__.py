"""`mkp ingress`: an Ingress controller in the manner of ingress-nginx.

It watches Ingresses, IngressClasses, Services, EndpointSlices and Secrets through the API
server, turns the Ingresses of its class into one routing table and serves it as an
HTTP/1.1 reverse proxy on 127.0.0.1 (ports 80/443 as root, 8080/8443 otherwise), sending
each request straight to a ready pod address from the Service's EndpointSlices (as
ingress-nginx does, bypassing the ClusterIP).

ingress-nginx's words are kept so its documentation carries over: a *server* per host
(Envoy: virtual host), *locations* in it (Envoy: routes), a *backend* per Service port
(Envoy: cluster) with its endpoints.

Modules, lowest first:

    annotations   the nginx.ingress.kubernetes.io/* annotations we honour, parsed once
    classes       which Ingresses are ours (IngressClass, default class, legacy annotation)
    routes        Ingresses -> servers and locations (merging as ingress-nginx does), matching
    upstreams     Service + EndpointSlices -> ready pod endpoints, round robin
    tls           certificates from Secrets, the fake default certificate, SNI
    ratelimit     limit-rps / limit-rpm / limit-connections per client address
    metrics       request counters, /healthz and /metrics
    proxying      the data plane: one aiohttp handler for every request
    controller    informers, work queues, reconcile (routing table, status, events)
    cli           `mkp ingress` and `main`
"""

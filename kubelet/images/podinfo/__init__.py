"""mkp's podinfo: a podinfo-compatible demo web app (the one Flagger's tutorials deploy).

Same flags and PODINFO_* environment variables as stefanprodan/podinfo (a flag given
on the command line wins over the environment, which wins over the default, as viper
does), the same endpoints and JSON shapes (/, /api/info, /version, /healthz, /readyz,
/readyz/enable|disable, /status/{code}, /delay/{seconds}, /env, /headers, /echo,
/chunked/{seconds}, /panic, /metrics with http_requests_total{status} and
http_request_duration_seconds{method,path,status}), the same fault injection
(--random-error: one request in three fails with 500, 400 or 409; --random-delay:
min..max s or ms), the same burners (--stress-cpu N busy cores, --stress-memory MB
resident), zap-style JSON logs on stderr, and the same graceful shutdown (on SIGTERM,
/healthz and /readyz fail, then 3 s later the server stops; not with --level=debug).

Written in Python with aiohttp; only relative imports, so the image store can copy this
package into an image layer and run it as the top-level package `podinfo`. Not served:
gRPC, the web UI beyond a small HTML page, /store, /cache (Redis), /token, /configs.
One deviation: with no --host, it listens on $MKP_POD_IP when the kubelet sets it
(pods of mkp's loopback network share the host's network namespace), else on all.
"""

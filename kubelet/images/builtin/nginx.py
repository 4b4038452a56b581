"""`nginx[:any tag]`: Debian's nginx (package nginx-light or nginx), when installed.

Shaped like the Docker Hub image: `ENTRYPOINT ["/docker-entrypoint.sh"]`, `CMD ["nginx",
"-g", "daemon off;"]`, /etc/nginx/nginx.conf including /etc/nginx/conf.d/*.conf, a
default server on port 80 serving /usr/share/nginx/html (Debian's "Welcome to nginx!"
page, from the host's /usr, bound read-only), access log to stdout, error log to
stderr. The binary is the host's /usr/sbin/nginx, so the version is Debian's, whatever
the tag says. Binding port 80 needs root.

The entrypoint copies /etc/nginx (with any volume mounted into it) to a fresh temporary
directory, points the copy's paths (pid file, temp dirs) there, and, when the kubelet
sets MKP_POD_IP, turns a bare `listen <port>` into `listen <pod IP>:<port>`: pods of the
loopback network share the host's network namespace, and each must bind only its own
address. Under the `process` runtime (no root filesystem) the script finds its layer
from its own path and uses the layer's /etc/nginx the same way.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from functools import cache

from kubelet.images.builtin.recipe import (
    DEFAULT_PATH,
    Recipe,
    Unavailable,
    host_base_layer,
    host_system_binds,
)
from kubelet.images.layers import Layer, directory, file
from kubelet.images.reference import Reference

REPOSITORY = "docker.io/library/nginx"
SEARCH_PATH = "/usr/sbin:/usr/local/sbin:/usr/bin:/usr/local/bin"

ENTRYPOINT = r"""#!/bin/sh
# mkp's nginx entrypoint: run nginx on a private copy of /etc/nginx (see the image docs).
set -e
root=$(cd "$(dirname "$0")" && pwd)
if [ "$1" = nginx ]; then
    run=$(mktemp -d "${TMPDIR:-/tmp}/nginx.XXXXXX")
    cp -RL "$root/etc/nginx" "$run/conf"
    mkdir -p "$run/cache"
    find "$run/conf" -name '*.conf' | while read -r conf; do
        sed -i -e "s#/etc/nginx#$run/conf#g" -e "s#/var/cache/nginx#$run/cache#g" \
            -e "s#/run/nginx.pid#$run/nginx.pid#g" "$conf"
        if [ -n "$MKP_POD_IP" ]; then
            sed -i -E "s#^([[:space:]]*listen[[:space:]]+)([0-9]+)([[:space:];])#\1$MKP_POD_IP:\2\3#" "$conf"
        fi
    done
    shift
    set -- nginx -c "$run/conf/nginx.conf" -e stderr "$@"
fi
exec "$@"
"""

NGINX_CONF = """user  nobody nogroup;
worker_processes  auto;

error_log  stderr notice;
pid        /run/nginx.pid;

events {
    worker_connections  1024;
}

http {
    include       /etc/nginx/mime.types;
    default_type  application/octet-stream;

    log_format  main  '$remote_addr - $remote_user [$time_local] "$request" '
                      '$status $body_bytes_sent "$http_referer" '
                      '"$http_user_agent" "$http_x_forwarded_for"';
    access_log  /dev/stdout  main;

    client_body_temp_path /var/cache/nginx/client_temp;
    proxy_temp_path       /var/cache/nginx/proxy_temp;
    fastcgi_temp_path     /var/cache/nginx/fastcgi_temp;
    uwsgi_temp_path       /var/cache/nginx/uwsgi_temp;
    scgi_temp_path        /var/cache/nginx/scgi_temp;

    sendfile        on;
    keepalive_timeout  65;

    include /etc/nginx/conf.d/*.conf;
}
"""

DEFAULT_CONF = """server {
    listen       80;
    server_name  localhost;

    location / {
        root   /usr/share/nginx/html;
        index  index.html index.htm;
    }
}
"""


@cache
def _nginx() -> tuple[str, str] | None:
    """(binary, version) of the host's nginx, or None."""
    binary = shutil.which("nginx", path=SEARCH_PATH)
    if binary is None:
        return None
    out = subprocess.run([binary, "-v"], capture_output=True, text=True, check=False)
    return binary, (out.stderr or out.stdout).strip().rpartition("/")[2]


def nginx(ref: Reference) -> Recipe:
    found = _nginx()
    if found is None:
        raise Unavailable("The nginx image needs Debian's nginx on the host (apt-get install nginx-light), "
                          "and it is not installed.")
    binary, version = found
    entries = [file("docker-entrypoint.sh", data=ENTRYPOINT, mode=0o755), directory("etc/nginx"),
               directory("etc/nginx/conf.d"), file("etc/nginx/nginx.conf", data=NGINX_CONF),
               file("etc/nginx/conf.d/default.conf", data=DEFAULT_CONF), directory("var/cache/nginx")]
    mime = "/etc/nginx/mime.types"
    if os.path.exists(mime):
        entries.append(file("etc/nginx/mime.types", source=mime))
    return Recipe(repository=REPOSITORY, tag=ref.tag or "latest", entrypoint=["/docker-entrypoint.sh"],
                  cmd=["nginx", "-g", "daemon off;"], env={"PATH": DEFAULT_PATH, "NGINX_VERSION": version},
                  layers=[Layer.of(entries), host_base_layer()], host_binds=list(host_system_binds()),
                  labels={"mkp.nginx": f"{binary} {version}"})

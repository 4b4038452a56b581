"""Images for the real kubelet: a store of built-in images, written in this project.

mkp nodes download nothing. An image reference (normalised as Docker does:
`busybox` is `docker.io/library/busybox:latest`) resolves to a built-in recipe, and
"pulling" it materialises its layers under `<node root>/images/`. What exists:

- `busybox[:any tag]`: Debian's busybox-static binary as /bin/busybox with a symlink
  per applet (sh, echo, sleep, wget, nslookup, cat, ls, tar, nc ...), /etc/passwd and
  /etc/group; `CMD ["sh"]`. The version is Debian's (1.35 on bookworm) whatever the tag.
- `python:3[.x][-slim|-alpine|...]`: the host's own Python 3 (Debian's /usr/bin/python3);
  the tag's minor must be the host's. The host's /usr/bin, /usr/lib ... are bound
  read-only; /usr/local/bin/python -> the host's interpreter; `CMD ["python3"]`.
- `ghcr.io/stefanprodan/podinfo:<version>`, `stefanprodan/podinfo:<version>`: a
  podinfo-compatible demo app (kubelet/images/podinfo/, Python + aiohttp) with podinfo's
  flags, PODINFO_* env, endpoints and metrics; version from the tag; `./podinfo` in
  /home/app and /usr/local/bin/podcli like the real image.
- `nginx[:any tag]`: Debian's nginx with the Docker image's layout (entrypoint, conf.d,
  port 80, welcome page); the version is Debian's.
- `registry.k8s.io/pause[:any tag]`: a /pause script that sleeps until SIGTERM.

Anything else fails like a registry's "not found" (ErrImagePull), naming these.
See builtin/ for each recipe's honest details; `Image` for what runtimes get.
"""

from kubelet.images.image import (
    ALWAYS,
    IF_NOT_PRESENT,
    NEVER,
    ErrImageNeverPull,
    Image,
    ImageNotFound,
)
from kubelet.images.reference import InvalidImageName, Reference, normalize, parse
from kubelet.images.store import ImageStore

__all__ = ["ALWAYS", "IF_NOT_PRESENT", "NEVER", "ErrImageNeverPull", "Image", "ImageNotFound", "ImageStore",
           "InvalidImageName", "Reference", "normalize", "parse"]

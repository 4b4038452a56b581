"""The catalogue of built-in images: which repository each recipe answers, and the
ErrImagePull message for everything else (naming what this node can run)."""

from __future__ import annotations

from collections.abc import Callable

from kubelet.images.builtin import busybox, curl, nginx, podinfo, python
from kubelet.images.builtin.recipe import Recipe, Unavailable
from kubelet.images.image import ImageNotFound
from kubelet.images.reference import Reference

_RECIPES: dict[str, Callable[[Reference], Recipe]] = {
    busybox.BUSYBOX_REPOSITORY: busybox.busybox,
    busybox.PAUSE_REPOSITORY: busybox.pause,
    python.REPOSITORY: python.python,
    nginx.REPOSITORY: nginx.nginx,
    **{repository: podinfo.podinfo for repository in podinfo.REPOSITORIES},
    **{repository: curl.curl for repository in curl.REPOSITORIES},
}



def available() -> list[str]:
    """The images this node can run, as the ErrImagePull message names them."""
    minor = ".".join(python.host_python()[1].split(".")[:2])
    return ["busybox[:any tag]", f"python:3 or python:{minor} [-slim|-alpine|...]",
            "ghcr.io/stefanprodan/podinfo:<version>", "stefanprodan/podinfo:<version>",
            "nginx[:any tag] (Debian's nginx, when installed)", "curlimages/curl[:any tag] (Debian's curl)",
            "registry.k8s.io/pause[:any tag]"]


def pull_error(ref: Reference, why: str | None = None) -> ImageNotFound:
    """containerd's words for a reference its registry does not have, then why and what exists."""
    text = (f'failed to pull and unpack image "{ref}": failed to resolve reference "{ref}": '
            f"{ref}: not found.")
    if why:
        text += f" {why}"
    text += (" mkp nodes download nothing: they run built-in images only: " + ", ".join(available()) + ".")
    return ImageNotFound(text)


def recipe_for(ref: Reference) -> Recipe:
    """The recipe for a normalised reference (its digest is checked by the store);
    raises ImageNotFound."""
    make = _RECIPES.get(ref.repository)
    if make is None:
        raise pull_error(ref)
    try:
        return make(ref)
    except Unavailable as exc:
        raise pull_error(ref, str(exc)) from None

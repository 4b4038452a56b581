"""The node's image store: resolve references to built-in images, pull them (honestly:
materialise their layers on disk), remember what was pulled, list it for node status.

State lives under `<root>/images/`: `layers/<hex>/` one directory per layer, named by
its digest (written once, then read-only for every container of every image using it),
and `repositories.json`, the references pulled so far with the image id each pulled.
A reference is *present* when it was pulled, its layers are on disk and its recipe
still gives the same id (if the host's busybox or the podinfo source changed, the
image is a new one and must be pulled again, as a moved tag would be).

Pull policies follow the kubelet's image manager: Always pulls every time (layers that
exist are kept, like containerd's "already exists"), IfNotPresent pulls when absent,
Never fails with ErrImageNeverPull when absent.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from kubelet.images import builtin, layers
from kubelet.images.builtin.recipe import Recipe
from kubelet.images.image import (
    IF_NOT_PRESENT,
    NEVER,
    PULL_POLICIES,
    ErrImageNeverPull,
    Image,
    ImageNotFound,
)
from kubelet.images.reference import Reference, normalize

STATE_FILE = "repositories.json"
RESOLVE_TTL = 10.0


class ImageStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.dir = self.root / "images"
        self.layers_dir = self.dir / "layers"
        self._state_lock = threading.Lock()
        self._pull_locks: dict[str, asyncio.Lock] = {}
        self._resolved: dict[str, tuple[float, Image]] = {}  # ref -> (monotonic time, image)

    # -- resolving --------------------------------------------------------------------

    def resolve(self, ref: str) -> Image:
        """The image `ref` names (pulled or not). Raises InvalidImageName for a bad
        reference, ImageNotFound for one this node cannot run. Remembered for
        RESOLVE_TTL seconds: a burst of pods of one image hashes its recipe once, and a
        change of the host's files (a busybox upgrade) is still seen within seconds."""
        now = time.monotonic()
        cached = self._resolved.get(ref)
        if cached is not None and now - cached[0] < RESOLVE_TTL:
            return copy.deepcopy(cached[1])
        image = self._image(*self._recipe(ref))
        if len(self._resolved) > 256:
            self._resolved.clear()
        self._resolved[ref] = (now, image)
        return copy.deepcopy(image)

    def _recipe(self, ref: str) -> tuple[Reference, Recipe]:
        reference = normalize(ref)
        recipe = builtin.recipe_for(reference)
        if reference.digest is not None and recipe.manifest_digest() != reference.digest:
            recipe = self._recipe_by_digest(reference)
        return reference, recipe

    def _recipe_by_digest(self, reference: Reference) -> Recipe:
        """A digest names content: look for a pulled tag of the repository with it."""
        for name in self._read_state():
            other = normalize(name)
            if other.repository == reference.repository and other.tag is not None:
                try:
                    recipe = builtin.recipe_for(Reference(other.domain, other.path, other.tag))
                except ImageNotFound:
                    continue
                if recipe.manifest_digest() == reference.digest:
                    return recipe
        raise builtin.pull_error(reference, f"No built-in {reference.familiar_repository} image has digest "
                                            f"{reference.digest}.")

    def _image(self, reference: Reference, recipe: Recipe) -> Image:
        layer_dirs = [self.layers_dir / layer.digest().partition(":")[2] for layer in recipe.layers]
        image = Image(ref=str(reference), id=recipe.image_id(),
                      repo_digest=f"{reference.repository}@{recipe.manifest_digest()}",
                      entrypoint=list(recipe.entrypoint), cmd=list(recipe.cmd), env=dict(recipe.env),
                      working_dir=recipe.working_dir, user=recipe.user,
                      size=sum(layer.size() for layer in recipe.layers), layers=layer_dirs,
                      host_binds=list(recipe.host_binds), repository=reference.repository, tag=reference.tag)
        image.process_path = _process_path(image)
        return image

    # -- presence and pulling ---------------------------------------------------------

    def present(self, ref: str) -> bool:
        try:
            image = self.resolve(ref)
        except ImageNotFound:
            return False
        return self._present(image)

    def _present(self, image: Image) -> bool:
        record = self._read_state().get(image.ref)
        return bool(record) and record.get("id") == image.id and all(d.is_dir() for d in image.layers)

    async def pull(self, ref: str, policy: str = IF_NOT_PRESENT) -> tuple[Image, bool]:
        """Make `ref` present per `policy`; returns (image, pulled) where pulled says a
        pull happened (events Pulling/Pulled) rather than "already present on machine".
        Raises InvalidImageName, ImageNotFound (ErrImagePull) or ErrImageNeverPull."""
        if policy not in PULL_POLICIES:
            raise ValueError(f"unknown imagePullPolicy {policy!r}: want one of {', '.join(PULL_POLICIES)}")
        if policy == NEVER:
            normalize(ref)  # InvalidImageName comes first, as in the kubelet
            try:
                image = self.resolve(ref)
            except ImageNotFound:
                raise ErrImageNeverPull(ref) from None
            if not self._present(image):
                raise ErrImageNeverPull(ref)
            return image, False
        reference, recipe = self._recipe(ref)
        image = self._image(reference, recipe)
        if policy == IF_NOT_PRESENT and self._present(image):
            return image, False
        async with self._pull_locks.setdefault(image.id, asyncio.Lock()):
            await asyncio.to_thread(self._materialise, recipe, image)
        image.process_path = _process_path(image)  # now that the layers exist
        return image, True

    def _materialise(self, recipe: Recipe, image: Image) -> None:
        for layer, directory in zip(recipe.layers, image.layers, strict=True):
            layers.materialise(layer, directory)
        with self._state_lock:
            state = self._read_state()
            state[image.ref] = {"id": image.id, "repoDigest": image.repo_digest, "size": image.size,
                                "pulledAt": time.time()}
            self._write_state(state)

    # -- listing ----------------------------------------------------------------------

    def images(self) -> list[Image]:
        """Every pulled reference that is still present, one Image each."""
        found = []
        for name in sorted(self._read_state()):
            try:
                image = self.resolve(name)
            except (ImageNotFound, ValueError):
                continue
            if self._present(image):
                found.append(image)
        return found

    def node_status_images(self) -> list[dict[str, Any]]:
        """node.status.images: one entry per image id, its repo digests and tags as names."""
        by_id: dict[str, dict[str, Any]] = {}
        for image in self.images():
            entry = by_id.setdefault(image.id, {"names": [], "sizeBytes": image.size})
            for name in (image.repo_digest, image.ref):
                if name not in entry["names"]:
                    entry["names"].append(name)
        return sorted(by_id.values(), key=lambda e: -e["sizeBytes"])

    # -- state file -------------------------------------------------------------------

    def _read_state(self) -> dict[str, dict[str, Any]]:
        try:
            return json.loads((self.dir / STATE_FILE).read_text())
        except FileNotFoundError:
            return {}
        except json.JSONDecodeError:
            return {}  # a torn file cannot happen (atomic replace); an edited one is ignored

    def _write_state(self, state: dict[str, dict[str, Any]]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.dir / f".{STATE_FILE}.{os.getpid()}.{threading.get_ident()}"
        tmp.write_text(json.dumps(state, indent=1, sort_keys=True))
        os.replace(tmp, self.dir / STATE_FILE)


def _process_path(image: Image) -> str:
    """The image's PATH with each dir mapped to where it is on the host."""
    dirs: list[str] = []
    for entry in image.env.get("PATH", "").split(":"):
        host = image.host_path(entry) if entry else None
        if host and os.path.isdir(host) and host not in dirs:
            dirs.append(host)
    return ":".join(dirs)

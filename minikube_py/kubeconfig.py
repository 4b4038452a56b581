"""Reading, merging and writing kubeconfig files the way kubectl does.

A kubeconfig holds named `clusters`, `users` and `contexts` plus a `current-context`.
`mkp up` writes a file with only its own cluster (`<state dir>/kubeconfig`) and merges
the same three entries into the user's kubeconfig, replacing entries of the same name
and leaving every other entry, key and the file's permissions alone.

Which file is "the user's kubeconfig" follows client-go's loading rules:
- `$KUBECONFIG` unset or empty: `~/.kube/config`.
- `$KUBECONFIG` a list (`:`-separated): entries are created in the first file of the
  list that exists, or in the last one when none exists (checked against kubectl 1.32:
  `kubectl config set-context` behaves exactly so). If a file already defines our
  context we update it there instead of shadowing it. `current-context` is read from the
  first file that sets one, so that is where we set it, or in the file we wrote.

Writes are atomic (a temporary file in the same directory, then `os.replace`), go
through symlinks to their target, and are serialised between `mkp` processes by an
advisory lock on the directory (two `mkp up` of different clusters may merge at once).
Missing and empty files read as an empty config; unparsable YAML is an error and the
file is left untouched.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

Config = dict[str, Any]
SECTIONS = (("clusters", "cluster"), ("contexts", "context"), ("users", "user"))


class KubeconfigError(Exception):
    """A kubeconfig file that cannot be read as a kubeconfig."""


def empty_config() -> Config:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [],
        "contexts": [],
        "current-context": "",
        "preferences": {},
        "users": [],
    }


def cluster_config(name: str, server: str, *, user: Mapping[str, Any] | None = None) -> Config:
    """A kubeconfig with one cluster, user and context, all called `name`, current."""
    config = empty_config()
    config["clusters"] = [{"name": name, "cluster": {"server": server}}]
    config["users"] = [{"name": name, "user": dict(user or {})}]
    config["contexts"] = [{"name": name, "context": {"cluster": name, "user": name}}]
    config["current-context"] = name
    return config


# --- pure operations on parsed configs --------------------------------------------


def _entries(config: Config, section: str) -> list[dict[str, Any]]:
    value = config.get(section)
    return value if isinstance(value, list) else []  # kubectl writes `clusters: null`


def entry_names(config: Config, section: str) -> set[str]:
    return {e.get("name") for e in _entries(config, section) if isinstance(e, dict)}


def merge(base: Config, overlay: Config, *, set_current: bool = True) -> Config:
    """`base` with every named entry of `overlay` added or replaced in place."""
    merged = dict(base)
    for section, _ in SECTIONS:
        entries = list(_entries(base, section))
        for new in _entries(overlay, section):
            names = [e.get("name") if isinstance(e, dict) else None for e in entries]
            if new["name"] in names:
                entries[names.index(new["name"])] = new
            else:
                entries.append(new)
        merged[section] = entries
    if set_current and overlay.get("current-context"):
        merged["current-context"] = overlay["current-context"]
    return merged


def remove(config: Config, *, cluster: str, user: str, context: str) -> Config:
    """`config` without the named entries. A current-context that pointed at the removed
    context is cleared, as `kubectl config delete-context` leaves it: pointing kubectl at
    some other cluster behind the user's back would be worse than pointing it nowhere."""
    wanted = {"clusters": cluster, "users": user, "contexts": context}
    pruned = dict(config)
    for section, _ in SECTIONS:
        pruned[section] = [e for e in _entries(config, section) if e.get("name") != wanted[section]]
    if config.get("current-context") == context:
        pruned["current-context"] = ""
    return pruned


# --- files -------------------------------------------------------------------------


def user_kubeconfig_paths(env: Mapping[str, str] | None = None) -> list[Path]:
    """The files kubectl loads, in precedence order."""
    env = os.environ if env is None else env
    listed = [p for p in env.get("KUBECONFIG", "").split(os.pathsep) if p]
    if listed:
        return [Path(p).expanduser() for p in dict.fromkeys(listed)]
    return [Path(os.path.expanduser("~")) / ".kube" / "config"]


def load(path: Path) -> Config:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return empty_config()
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise KubeconfigError(f"{path}: not valid YAML: {e}") from e
    if data is None:
        return empty_config()
    if not isinstance(data, dict):
        raise KubeconfigError(f"{path}: expected a mapping at the top level")
    return data


def write(path: Path, config: Config) -> None:
    """Atomically replace `path` (following symlinks), keeping its mode; new files 0600
    because kubeconfigs carry credentials."""
    target = Path(os.path.realpath(path))
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = target.stat().st_mode & 0o7777
    except FileNotFoundError:
        mode = 0o600
    text = yaml.safe_dump(config, default_flow_style=False, sort_keys=False)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def _locked_dir(path: Path) -> Iterator[None]:
    """flock the directory holding `path`: no lock file left behind, freed on crash."""
    directory = Path(os.path.realpath(path)).parent
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def update(path: Path, change: Callable[[Config], Config]) -> bool:
    """Read-modify-write one file under the lock; returns whether anything changed.
    A file that does not exist and would stay empty is not created."""
    with _locked_dir(path):
        before = load(path)
        after = change(before)
        if after == before:
            return False
        write(path, after)
        return True


def merge_target(paths: list[Path], context: str) -> Path:
    """The file in which to create or update our entries (see the module docstring)."""
    for p in paths:
        if context in entry_names(load(p), "contexts"):
            return p
    existing = [p for p in paths if p.exists()]
    return existing[0] if existing else paths[-1]


def merge_into_user_kubeconfig(overlay: Config, *, paths: list[Path] | None = None) -> Path:
    """Merge `overlay` (from `cluster_config`) into the user's kubeconfig and make its
    context current. Returns the file that received the entries."""
    paths = paths or user_kubeconfig_paths()
    context = overlay["current-context"]
    target = merge_target(paths, context)
    update(target, lambda c: merge(c, overlay, set_current=False))
    current_in = next((p for p in paths if load(p).get("current-context")), target)
    update(current_in, lambda c: {**c, "current-context": context})
    return target


def remove_from_user_kubeconfig(name: str, *, paths: list[Path]) -> list[Path]:
    """Remove the cluster, user and context called `name` from each file; returns the
    files that changed. Files that do not exist are left absent."""
    changed = []
    for p in paths:
        if p.exists() and update(p, lambda c: remove(c, cluster=name, user=name, context=name)):
            changed.append(p)
    return changed

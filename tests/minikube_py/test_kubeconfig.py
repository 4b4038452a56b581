"""kubeconfig loading, merging, removal and writing, checked against kubectl's rules
(and against kubectl itself where it is installed)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from minikube_py import kubeconfig as kc
from tests.conftest import require_tool


def other_config() -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "prod", "cluster": {"server": "https://10.0.0.1:6443"}}],
        "contexts": [{"name": "prod", "context": {"cluster": "prod", "user": "admin", "namespace": "ops"}}],
        "current-context": "prod",
        "users": [{"name": "admin", "user": {"token": "t0k3n"}}],
        "preferences": {"colors": True},
    }


def write_yaml(path: Path, data: dict | str) -> Path:
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("content", [
    pytest.param(None, id="missing"),
    pytest.param("", id="empty"),
    pytest.param("# only a comment\n", id="comment-only"),
])
def test_load_treats_missing_and_empty_files_as_empty_config(tmp_path: Path, content: str | None) -> None:
    path = tmp_path / "config"
    if content is not None:
        path.write_text(content)
    assert kc.load(path) == kc.empty_config()


def test_load_rejects_invalid_yaml_and_update_leaves_the_file_alone(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "config", "clusters: [unclosed\n")
    with pytest.raises(kc.KubeconfigError):
        kc.merge_into_user_kubeconfig(kc.cluster_config("mkp", "http://127.0.0.1:1"), paths=[path])
    assert path.read_text() == "clusters: [unclosed\n"


def test_merge_keeps_other_entries_and_replaces_ours_in_place() -> None:
    base = kc.merge(other_config(), kc.cluster_config("mkp", "http://127.0.0.1:1"))
    merged = kc.merge(base, kc.cluster_config("mkp", "http://127.0.0.1:2"))
    assert [c["name"] for c in merged["clusters"]] == ["prod", "mkp"]
    assert merged["clusters"][1]["cluster"]["server"] == "http://127.0.0.1:2"
    assert merged["contexts"][0]["context"]["namespace"] == "ops"
    assert merged["users"][0]["user"] == {"token": "t0k3n"}
    assert merged["preferences"] == {"colors": True}
    assert merged["current-context"] == "mkp"


def test_merge_accepts_null_sections_as_kubectl_writes_them() -> None:
    base = {"apiVersion": "v1", "kind": "Config", "clusters": None, "contexts": None, "users": None}
    merged = kc.merge(base, kc.cluster_config("mkp", "http://127.0.0.1:1"))
    assert kc.entry_names(merged, "contexts") == {"mkp"}


def test_remove_drops_our_entries_and_clears_current_context_only_if_it_was_ours() -> None:
    ours = kc.merge(other_config(), kc.cluster_config("mkp", "http://127.0.0.1:1"))
    removed = kc.remove(ours, cluster="mkp", user="mkp", context="mkp")
    assert removed["current-context"] == ""
    assert kc.entry_names(removed, "clusters") == {"prod"}
    assert kc.entry_names(removed, "users") == {"admin"}
    untouched = kc.remove(other_config(), cluster="mkp", user="mkp", context="mkp")
    assert untouched == other_config()


def test_write_creates_private_file_and_directory_atomically(tmp_path: Path) -> None:
    path = tmp_path / "new" / ".kube" / "config"
    kc.write(path, kc.cluster_config("mkp", "http://127.0.0.1:1"))
    assert path.stat().st_mode & 0o777 == 0o600
    assert os.listdir(path.parent) == ["config"], "no temporary file may be left behind"


def test_write_preserves_mode_and_follows_symlinks(tmp_path: Path) -> None:
    real = write_yaml(tmp_path / "real-config", other_config())
    real.chmod(0o644)
    link = tmp_path / "config"
    link.symlink_to(real)
    kc.merge_into_user_kubeconfig(kc.cluster_config("mkp", "http://127.0.0.1:1"), paths=[link])
    assert link.is_symlink()
    assert real.stat().st_mode & 0o777 == 0o644
    assert kc.entry_names(kc.load(real), "contexts") == {"prod", "mkp"}


def test_user_kubeconfig_paths_respect_kubeconfig_list(tmp_path: Path) -> None:
    listed = f"{tmp_path}/a{os.pathsep}{os.pathsep}{tmp_path}/b{os.pathsep}{tmp_path}/a"
    assert kc.user_kubeconfig_paths({"KUBECONFIG": listed}) == [tmp_path / "a", tmp_path / "b"]
    home = Path(os.path.expanduser("~"))
    assert kc.user_kubeconfig_paths({"KUBECONFIG": ""}) == [home / ".kube" / "config"]


def test_merge_target_is_last_file_when_none_exists(tmp_path: Path) -> None:
    paths = [tmp_path / "a", tmp_path / "b"]
    written = kc.merge_into_user_kubeconfig(kc.cluster_config("mkp", "http://127.0.0.1:1"), paths=paths)
    assert written == tmp_path / "b" and not (tmp_path / "a").exists()
    assert kc.load(tmp_path / "b")["current-context"] == "mkp"


def test_merge_target_is_first_existing_file_and_current_context_goes_where_kubectl_reads_it(
        tmp_path: Path) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    write_yaml(b, {"apiVersion": "v1", "kind": "Config"})
    write_yaml(c, other_config())  # the only file that sets current-context
    written = kc.merge_into_user_kubeconfig(kc.cluster_config("mkp", "http://127.0.0.1:1"), paths=[a, b, c])
    assert written == b and not a.exists()
    assert kc.entry_names(kc.load(b), "contexts") == {"mkp"}
    assert kc.load(c)["current-context"] == "mkp"
    assert kc.entry_names(kc.load(c), "contexts") == {"prod"}


def test_merge_updates_the_file_that_already_defines_our_context(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    write_yaml(a, other_config())
    write_yaml(b, kc.cluster_config("mkp", "http://127.0.0.1:1"))
    written = kc.merge_into_user_kubeconfig(kc.cluster_config("mkp", "http://127.0.0.1:2"), paths=[a, b])
    assert written == b
    assert kc.entry_names(kc.load(a), "contexts") == {"prod"}
    assert kc.load(b)["clusters"][0]["cluster"]["server"] == "http://127.0.0.1:2"


def test_remove_from_user_kubeconfig_touches_only_files_with_our_entries(tmp_path: Path) -> None:
    a, b, missing = tmp_path / "a", tmp_path / "b", tmp_path / "missing"
    write_yaml(a, other_config())
    write_yaml(b, kc.cluster_config("mkp", "http://127.0.0.1:1"))
    before = a.read_text()
    assert kc.remove_from_user_kubeconfig("mkp", paths=[a, b, missing]) == [b]
    assert a.read_text() == before and not missing.exists()
    assert kc.load(b)["contexts"] == []


def test_kubectl_sees_merged_context_across_a_kubeconfig_list(tmp_path: Path) -> None:
    kubectl = require_tool("kubectl")
    a, b = tmp_path / "a", tmp_path / "b"
    write_yaml(b, other_config())
    kc.merge_into_user_kubeconfig(kc.cluster_config("mkp", "http://127.0.0.1:1"), paths=[a, b])
    env = {**os.environ, "KUBECONFIG": f"{a}{os.pathsep}{b}"}
    run = lambda *args: subprocess.run([kubectl, "config", *args], env=env, capture_output=True,  # noqa: E731
                                       text=True, check=True, timeout=30).stdout.strip()
    assert run("current-context") == "mkp"
    assert set(run("get-contexts", "-o", "name").split()) == {"mkp", "prod"}
    assert run("view", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}") == "http://127.0.0.1:1"

"""Kubeconfig loading, and the client against a cluster started as a user starts it
(`mkp up` in a child process, reached through the kubeconfig it wrote)."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest
import yaml

from minikube_py.client import CONFIGMAPS, NAMESPACES, ApiClient, Informer
from minikube_py.client.clientconfig import ConfigError, load
from tests.minikube_py.client.support import configmap


def write_kubeconfig(path: Path, *, server: str = "http://127.0.0.1:6443", user: dict | None = None,
                     cluster_extra: dict | None = None, namespace: str | None = None) -> Path:
    context = {"cluster": "c", "user": "u"}
    if namespace:
        context["namespace"] = namespace
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "ctx",
        "clusters": [{"name": "c", "cluster": {"server": server, **(cluster_extra or {})}}],
        "users": [{"name": "u", "user": user or {}}],
        "contexts": [{"name": "ctx", "context": context}, {"name": "other", "context": {"cluster": "c"}}],
    }))
    return path


def test_token_and_token_file(tmp_path: Path) -> None:
    assert load(write_kubeconfig(tmp_path / "a", user={"token": "t1"})).token == "t1"
    (tmp_path / "tok").write_text("t2\n")
    config = load(write_kubeconfig(tmp_path / "b", user={"tokenFile": "tok"}, namespace="team"))
    assert config.token == "t2" and config.namespace == "team" and config.ssl_context is None


def test_named_context_and_https(tmp_path: Path) -> None:
    path = write_kubeconfig(tmp_path / "k", server="https://example:6443/",
                            cluster_extra={"insecure-skip-tls-verify": True})
    config = load(path, "other")
    assert config.server == "https://example:6443" and config.token is None
    assert isinstance(config.ssl_context, ssl.SSLContext) and config.ssl_context.verify_mode == ssl.CERT_NONE


@pytest.mark.parametrize("context", ["missing", None])
def test_unusable_kubeconfigs_are_rejected(tmp_path: Path, context: str | None) -> None:
    path = tmp_path / "k"
    if context is None:
        path.write_text(yaml.safe_dump({"clusters": []}))  # no current-context
    else:
        write_kubeconfig(path)
    with pytest.raises(ConfigError):
        load(path, context)


async def test_client_against_a_cluster_started_with_mkp_up(mkp_cluster_module) -> None:
    async with ApiClient.from_kubeconfig(mkp_cluster_module.kubeconfig, field_manager="client-e2e") as client:
        assert client.server == mkp_cluster_module.server
        names = {n["metadata"]["name"] for n in (await client.list(NAMESPACES))["items"]}
        assert "kube-system" in names
        informer = Informer(client, CONFIGMAPS, namespace="default")
        informer.start()
        try:
            assert await informer.wait_synced(10)
            await client.create(CONFIGMAPS, configmap("from-client"))
            for _ in range(400):
                if informer.lister.get("from-client", "default"):
                    break
                await asyncio.sleep(0.005)
            assert informer.lister.get("from-client", "default")["metadata"]["uid"]
        finally:
            await informer.stop()

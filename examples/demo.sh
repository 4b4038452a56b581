#!/usr/bin/env bash
# What `make run` runs after `mkp up`: a few kubectl commands against the cluster, to
# show it answering like a real one. Uses the cluster's own kubeconfig, so it works
# whether or not `mkp up` merged a context into ~/.kube/config.
#   MKP_HOME (default ~/.mkp), MKP_NAME (default mkp), KUBECTL (default kubectl)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
kubeconfig="${MKP_HOME:-$HOME/.mkp}/${MKP_NAME:-mkp}/kubeconfig"
[ -f "$kubeconfig" ] || { echo "no cluster kubeconfig at $kubeconfig; run 'mkp up' first" >&2; exit 1; }
k() { echo "+ kubectl $*" >&2; "${KUBECTL:-kubectl}" --kubeconfig "$kubeconfig" "$@"; }

k get namespaces
k apply -f "$here/demo-configmap.yaml"
k get configmap mkp-demo -o yaml

# The control loops: a Deployment rolls out on the fake nodes (make run starts two).
k get nodes
k apply -f "$here/../tests/e2e/manifests/deployment.yaml"
k rollout status deployment/order-service --timeout=60s
k set image deployment/order-service order-service=walmart/order-service:2.2.0
k rollout status deployment/order-service --timeout=60s
k rollout history deployment/order-service
k get deployments,replicasets,pods -o wide

# A Job runs to completion; a StatefulSet gets ordered pods, each with its own volume
# from the default StorageClass (local-path, like kind's `standard`).
k create job hello --image=busybox -- echo hello
k wait --for=condition=complete job/hello --timeout=60s
k get jobs
k apply -f "$here/../tests/e2e/manifests/statefulset.yaml"
k rollout status statefulset/web --timeout=90s
k get statefulset web
k get pods,pvc -l app=nginx
k get pv

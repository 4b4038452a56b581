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

# A real node (`mkp up --nodes 1`): the study guide's Pod runs the podinfo demo app as a
# real process, its probes turn it Ready, and kubectl logs/exec reach it.
k get nodes -o wide
place() {  # $1 = In (fake nodes) or DoesNotExist (real nodes): an affinity on mkp.dev/fake-node
  python3 -c 'import json, sys
op = sys.argv[1]
term = {"key": "mkp.dev/fake-node", "operator": op, **({"values": ["true"]} if op == "In" else {})}
obj = json.load(sys.stdin)
for item in obj.get("items", [obj]):
    if item["kind"] not in ("Pod", "Deployment", "StatefulSet", "Job"):
        continue
    spec = item["spec"]["template"]["spec"] if "template" in item.get("spec", {}) else item["spec"]
    spec["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [term]}]}}}
json.dump(obj, sys.stdout)' "$1"
}
k apply -f "$here/seed-pod.yaml" --dry-run=client -o json | place DoesNotExist | k apply -f -
k wait --for=condition=Ready pod/my-app --timeout=60s
k exec my-app -- sh -c 'echo "my pod IP is $POD_IP"'
k logs my-app --tail=2
k get pod my-app -o wide

# The control loops: a Deployment rolls out on the fake nodes (make run starts two); its
# images exist only as names, so a node affinity keeps it off the real node.
k apply -f "$here/../tests/e2e/manifests/deployment.yaml" --dry-run=client -o json | place In | k apply -f -
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
k apply -f "$here/../tests/e2e/manifests/statefulset.yaml" --dry-run=client -o json | place In | k apply -f -
k rollout status statefulset/web --timeout=90s
k get statefulset web
k get pods,pvc -l app=nginx
k get pv

# Services and DNS: the seed's pod behind a Service; a client pod on the real node reaches
# it by name through cluster DNS and the node's service proxy (by the Service's
# environment variables where the pod has no cluster DNS: the process runtime).
k expose pod my-app --name my-service --port 8080 --target-port 8080
k get service my-service -o wide
k run net-client --image=busybox --restart=Never --dry-run=client -o json -- sleep 300 | place DoesNotExist | k apply -f -
k wait --for=condition=Ready pod/net-client --timeout=60s
k exec net-client -- sh -c 'wget -qO- http://my-service:8080/version 2>/dev/null ||
  wget -qO- "http://$MY_SERVICE_SERVICE_HOST:$MY_SERVICE_SERVICE_PORT/version"'
k get endpointslices -l kubernetes.io/service-name=my-service
k delete pod net-client --wait=false

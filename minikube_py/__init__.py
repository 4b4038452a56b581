"""minikube_py (`mkp`): the CLI, cluster supervisor, config, kubeconfig, shared API
model and the client runtime every component uses."""

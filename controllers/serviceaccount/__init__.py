"""The ServiceAccount controller (default ServiceAccounts) and the kube-root-ca.crt publisher."""

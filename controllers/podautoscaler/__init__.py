"""The HorizontalPodAutoscaler controller (pkg/controller/podautoscaler), for a cluster
without a metrics API: it keeps the target within minReplicas..maxReplicas and reports,
as Kubernetes does when metrics-server is absent, that it cannot compute a replica count."""

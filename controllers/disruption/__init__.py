"""The disruption controller (pkg/controller/disruption): PodDisruptionBudget status."""

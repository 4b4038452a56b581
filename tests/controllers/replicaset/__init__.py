"""ReplicaSet controller and the shared claiming / expectations helpers."""

"""Deployment controller: arithmetic, pod-template-hash, and rollouts on an in-memory World."""

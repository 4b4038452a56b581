"""The Kubernetes API server: an aiohttp app derived from one resource registry, over a
revision-log store (see docs/architecture.md)."""

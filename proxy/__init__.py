"""Envoy-like L7 engine, sidecar, gateway and L4 service proxy. Empty until the proxy issue."""

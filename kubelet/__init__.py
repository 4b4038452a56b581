"""Node agent: pod workers, runtimes, probes, volumes, streaming. Empty until the kubelet issue."""

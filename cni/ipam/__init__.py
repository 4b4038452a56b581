"""IP address management plugins: which address a pod's interface gets."""

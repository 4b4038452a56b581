"""IPAM, network plugins and cluster DNS. Empty until the networking issue."""

"""The load-balancer controller: loopback addresses for `type: LoadBalancer` Services."""

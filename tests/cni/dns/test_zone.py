"""The cluster zone without a cluster: Service and EndpointSlice objects in, DNS messages
out (read back with dnspython), as CoreDNS's kubernetes plugin answers them."""

from __future__ import annotations

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import pytest

from cni.dns.metrics import Metrics
from cni.dns.records import service_records
from cni.dns.server import DnsHandler, Listen
from cni.dns.zone import ClusterZone

LISTEN = Listen("127.0.0.1", 53)


def service(name: str, namespace: str = "default", **spec) -> dict:
    return {"metadata": {"name": name, "namespace": namespace}, "spec": spec}


def endpoint_slice(ports: list[dict], *endpoints: dict, address_type: str = "IPv4") -> dict:
    return {"addressType": address_type, "ports": ports, "endpoints": list(endpoints)}


def endpoint(ip: str, hostname: str | None = None, ready: bool | None = True) -> dict:
    ep: dict = {"addresses": [ip]}
    if hostname:
        ep["hostname"] = hostname
    if ready is not None:
        ep["conditions"] = {"ready": ready}
    return ep


class Dns:
    """A zone with its handler; `ask` returns the parsed response."""

    def __init__(self, pods: str = "insecure") -> None:
        self.zone = ClusterZone("cluster.local", ["10.96.0.10"], pods=pods)
        self.zone.synced = True
        self.zone.set_namespaces({"default", "kube-system"})
        self.handler = DnsHandler(self.zone, Metrics())

    def add(self, svc: dict, *slices: dict) -> None:
        key = f"{svc['metadata']['namespace']}/{svc['metadata']['name']}"
        self.zone.set_service(key, service_records(svc, list(slices), "cluster.local"))

    def ask(self, name: str, rdtype: str = "A", *, tcp: bool = False, **options) -> dns.message.Message:
        query = dns.message.make_query(name, rdtype, **options)
        return dns.message.from_wire(self.handler.handle(query.to_wire(), LISTEN, tcp))

    def values(self, name: str, rdtype: str = "A") -> list[str]:
        response = self.ask(name, rdtype)
        assert response.rcode() == dns.rcode.NOERROR, dns.rcode.to_text(response.rcode())
        return sorted(rd.to_text() for rrset in response.answer for rd in rrset)


@pytest.fixture
def cluster_dns() -> Dns:
    d = Dns()
    d.add(service("web", clusterIP="10.96.0.20", clusterIPs=["10.96.0.20"],
                  ports=[{"name": "http", "port": 80, "protocol": "TCP"}, {"port": 81, "protocol": "UDP"}]),
          endpoint_slice([{"name": "http", "port": 8080, "protocol": "TCP"}],
                         endpoint("10.244.1.5"), endpoint("10.244.1.6", "spare", ready=False)))
    d.add(service("nginx", clusterIP="None", ports=[{"name": "web", "port": 80}]),
          endpoint_slice([{"name": "web", "port": 80, "protocol": "TCP"}],
                         endpoint("10.244.1.7", "web-0"), endpoint("10.244.1.8", "web-1", ready=None),
                         endpoint("10.244.1.9", "web-2", ready=False), endpoint("10.244.1.10")))
    return d


def test_cluster_ip_service_answers_its_cluster_ip_with_authority(cluster_dns):
    response = cluster_dns.ask("web.default.svc.cluster.local")
    assert response.flags & dns.flags.AA
    assert [(r.ttl, [rd.to_text() for rd in r]) for r in response.answer] == [(5, ["10.96.0.20"])]
    assert cluster_dns.values("web.default.svc.cluster.local", "AAAA") == []


def test_answers_keep_the_query_case(cluster_dns):
    response = cluster_dns.ask("Web.DEFAULT.svc.Cluster.Local")
    assert response.answer[0].name.to_text() == "Web.DEFAULT.svc.Cluster.Local."
    assert response.answer[0][0].to_text() == "10.96.0.20"


def test_srv_for_named_ports_and_all_ports_on_the_service_name(cluster_dns):
    assert cluster_dns.values("_http._tcp.web.default.svc.cluster.local", "SRV") == [
        "0 100 80 web.default.svc.cluster.local."]
    # The plain name lists every port (CoreDNS: weight 100/n), the unnamed one too.
    assert cluster_dns.values("web.default.svc.cluster.local", "SRV") == [
        "0 50 80 web.default.svc.cluster.local.", "0 50 81 web.default.svc.cluster.local."]
    response = cluster_dns.ask("_http._tcp.web.default.svc.cluster.local", "SRV")
    assert [(r.name.to_text(), r[0].to_text()) for r in response.additional] == [
        ("web.default.svc.cluster.local.", "10.96.0.20")]
    # The port-qualified name answers A as well; a wrong protocol is no name.
    assert cluster_dns.values("_http._tcp.web.default.svc.cluster.local") == ["10.96.0.20"]
    assert cluster_dns.ask("_http._udp.web.default.svc.cluster.local", "SRV").rcode() == dns.rcode.NXDOMAIN


def test_headless_service_answers_ready_endpoints(cluster_dns):
    # web-2 is not ready; an endpoint without conditions counts as ready.
    assert cluster_dns.values("nginx.default.svc.cluster.local") == [
        "10.244.1.10", "10.244.1.7", "10.244.1.8"]


def test_headless_srv_names_each_endpoint_by_hostname_or_dashed_address(cluster_dns):
    assert cluster_dns.values("_web._tcp.nginx.default.svc.cluster.local", "SRV") == [
        "0 33 80 10-244-1-10.nginx.default.svc.cluster.local.",
        "0 33 80 web-0.nginx.default.svc.cluster.local.",
        "0 33 80 web-1.nginx.default.svc.cluster.local."]
    additional = cluster_dns.ask("_web._tcp.nginx.default.svc.cluster.local", "SRV").additional
    assert sorted((r.name.to_text(), r[0].to_text()) for r in additional) == [
        ("10-244-1-10.nginx.default.svc.cluster.local.", "10.244.1.10"),
        ("web-0.nginx.default.svc.cluster.local.", "10.244.1.7"),
        ("web-1.nginx.default.svc.cluster.local.", "10.244.1.8")]


def test_statefulset_pod_names_and_dashed_endpoint_names(cluster_dns):
    assert cluster_dns.values("web-0.nginx.default.svc.cluster.local") == ["10.244.1.7"]
    assert cluster_dns.values("10-244-1-10.nginx.default.svc.cluster.local") == ["10.244.1.10"]
    assert cluster_dns.ask("web-2.nginx.default.svc.cluster.local").rcode() == dns.rcode.NXDOMAIN
    # Endpoint names exist for ClusterIP Services too (CoreDNS answers r.endpoint for any).
    assert cluster_dns.values("10-244-1-5.web.default.svc.cluster.local") == ["10.244.1.5"]


def test_publish_not_ready_addresses_includes_unready_endpoints():
    d = Dns()
    d.add(service("db", clusterIP="None", publishNotReadyAddresses=True),
          endpoint_slice([], endpoint("10.244.2.1", "db-0", ready=False)))
    assert d.values("db.default.svc.cluster.local") == ["10.244.2.1"]
    assert d.values("db-0.db.default.svc.cluster.local") == ["10.244.2.1"]
    assert d.values("db.default.svc.cluster.local", "SRV") == []  # no ports: addresses only


def test_headless_service_without_ready_endpoints_is_nxdomain():
    d = Dns()
    d.add(service("empty", clusterIP="None"), endpoint_slice([], endpoint("10.244.2.2", ready=False)))
    assert d.ask("empty.default.svc.cluster.local").rcode() == dns.rcode.NXDOMAIN


def test_external_name_is_a_cname_not_chased_off_the_machine():
    d = Dns()
    d.add(service("ext", type="ExternalName", externalName="www.example.com"))
    response = d.ask("ext.default.svc.cluster.local")
    assert [(r.rdtype, r[0].to_text()) for r in response.answer] == [(dns.rdatatype.CNAME, "www.example.com.")]
    assert d.values("ext.default.svc.cluster.local", "CNAME") == ["www.example.com."]
    assert d.values("ext.default.svc.cluster.local", "SRV") == []


def test_external_name_inside_the_zone_is_chased(cluster_dns):
    cluster_dns.add(service("alias", type="ExternalName", externalName="web.default.svc.cluster.local"))
    response = cluster_dns.ask("alias.default.svc.cluster.local")
    assert [(r.name.to_text(), r[0].to_text()) for r in response.answer] == [
        ("alias.default.svc.cluster.local.", "web.default.svc.cluster.local."),
        ("web.default.svc.cluster.local.", "10.96.0.20")]
    # A target without addresses drops the CNAME (CoreDNS): no data.
    cluster_dns.add(service("dangling", type="ExternalName", externalName="gone.default.svc.cluster.local"))
    assert cluster_dns.values("dangling.default.svc.cluster.local") == []


def test_missing_names_are_nxdomain_with_the_zone_soa(cluster_dns):
    response = cluster_dns.ask("nope.default.svc.cluster.local")
    assert response.rcode() == dns.rcode.NXDOMAIN and response.flags & dns.flags.AA
    assert not response.answer
    [soa] = response.authority
    assert (soa.name.to_text(), soa.ttl) == ("cluster.local.", 5)
    assert soa[0].to_text().split()[:2] == ["ns.dns.cluster.local.", "hostmaster.cluster.local."]
    assert soa[0].to_text().split()[3:] == ["7200", "1800", "86400", "5"]
    for name in ("web.nonexistent.svc.cluster.local", "a.b.web.default.svc.cluster.local",
                 "web.default.foo.cluster.local", "kubernetes.default.svc.cluster.local.default.svc.cluster.local"):
        assert cluster_dns.ask(name).rcode() == dns.rcode.NXDOMAIN, name


def test_existing_names_without_the_type_are_noerror_with_soa(cluster_dns):
    for name, rdtype in [("web.default.svc.cluster.local", "MX"), ("default.svc.cluster.local", "A"),
                         ("svc.cluster.local", "A"), ("cluster.local", "A"), ("nginx.default.svc.cluster.local", "TXT")]:
        response = cluster_dns.ask(name, rdtype)
        assert (response.rcode(), response.answer, len(response.authority)) == (dns.rcode.NOERROR, [], 1), name


def test_schema_version_soa_and_ns_of_the_zone(cluster_dns):
    response = cluster_dns.ask("dns-version.cluster.local", "TXT")
    assert [(r.ttl, r[0].to_text()) for r in response.answer] == [(28800, '"1.1.0"')]
    assert cluster_dns.values("cluster.local", "NS") == ["kube-dns.kube-system.svc.cluster.local."]
    assert cluster_dns.values("ns.dns.cluster.local") == ["10.96.0.10"]
    soa = cluster_dns.ask("cluster.local", "SOA").answer[0]
    assert soa.name.to_text() == "cluster.local."
    # Below the apex SOA is a type like any other (CoreDNS's handler tests): no data, or no name.
    response = cluster_dns.ask("web.default.svc.cluster.local", "SOA")
    assert (response.rcode(), response.answer, response.authority[0].name.to_text()) == (
        dns.rcode.NOERROR, [], "cluster.local.")
    assert cluster_dns.ask("nope.default.svc.cluster.local", "SOA").rcode() == dns.rcode.NXDOMAIN


def test_serial_changes_with_the_records(cluster_dns):
    before = cluster_dns.ask("cluster.local", "SOA").answer[0][0].serial
    cluster_dns.add(service("new", clusterIP="10.96.0.30", ports=[{"port": 1}]))
    assert cluster_dns.ask("cluster.local", "SOA").answer[0][0].serial > before


def test_pod_records_insecure_verified_and_disabled():
    insecure = Dns()
    assert insecure.values("10-244-1-5.default.pod.cluster.local") == ["10.244.1.5"]
    assert insecure.values("fd00--1.default.pod.cluster.local", "AAAA") == ["fd00::1"]
    assert insecure.ask("10-244-1-5.nope.pod.cluster.local").rcode() == dns.rcode.NXDOMAIN
    assert insecure.ask("not-an-ip.default.pod.cluster.local").rcode() == dns.rcode.NXDOMAIN
    verified = Dns(pods="verified")
    verified.zone.pod_exists = lambda namespace, ip: (namespace, ip) == ("default", "10.244.1.5")
    assert verified.values("10-244-1-5.default.pod.cluster.local") == ["10.244.1.5"]
    assert verified.ask("10-244-1-6.default.pod.cluster.local").rcode() == dns.rcode.NXDOMAIN
    disabled = Dns(pods="disabled")
    assert disabled.ask("10-244-1-5.default.pod.cluster.local").rcode() == dns.rcode.NXDOMAIN


def test_reverse_lookups_for_cluster_ips_and_endpoints(cluster_dns):
    assert cluster_dns.values("20.0.96.10.in-addr.arpa", "PTR") == ["web.default.svc.cluster.local."]
    assert cluster_dns.values("7.1.244.10.in-addr.arpa", "PTR") == ["web-0.nginx.default.svc.cluster.local."]
    # Unknown addresses fall through to the end of the plugin chain: SERVFAIL, never forwarded.
    assert cluster_dns.ask("99.99.99.10.in-addr.arpa", "PTR").rcode() == dns.rcode.SERVFAIL
    cluster_dns.zone.set_service("default/web", None)
    assert cluster_dns.ask("20.0.96.10.in-addr.arpa", "PTR").rcode() == dns.rcode.SERVFAIL


def test_names_outside_the_cluster_zones_are_servfail_without_authority(cluster_dns):
    response = cluster_dns.ask("www.example.com")
    assert response.rcode() == dns.rcode.SERVFAIL
    assert not response.flags & dns.flags.AA
    assert cluster_dns.ask("notcluster.local").rcode() == dns.rcode.SERVFAIL


def test_before_the_caches_sync_nxdomain_is_servfail(cluster_dns):
    cluster_dns.zone.synced = False
    assert cluster_dns.ask("nope.default.svc.cluster.local").rcode() == dns.rcode.SERVFAIL
    assert cluster_dns.values("web.default.svc.cluster.local") == ["10.96.0.20"]


def test_removing_a_service_removes_its_names(cluster_dns):
    cluster_dns.zone.set_service("default/nginx", None)
    for name in ("nginx.default.svc.cluster.local", "web-0.nginx.default.svc.cluster.local",
                 "_web._tcp.nginx.default.svc.cluster.local"):
        assert cluster_dns.ask(name).rcode() == dns.rcode.NXDOMAIN
    assert cluster_dns.ask("7.1.244.10.in-addr.arpa", "PTR").rcode() == dns.rcode.SERVFAIL


def test_dual_stack_service_answers_a_and_aaaa():
    d = Dns()
    d.add(service("dual", clusterIP="10.96.0.40", clusterIPs=["10.96.0.40", "fd00:96::40"], ports=[{"port": 80}]))
    assert d.values("dual.default.svc.cluster.local") == ["10.96.0.40"]
    assert d.values("dual.default.svc.cluster.local", "AAAA") == ["fd00:96::40"]

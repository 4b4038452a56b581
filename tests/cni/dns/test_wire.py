"""The message layer: reading queries, EDNS0, truncation over UDP, and the error
answers CoreDNS gives to what it cannot or will not answer."""

from __future__ import annotations

import dns.edns
import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import pytest

from cni.dns import wire
from cni.dns.metrics import Metrics
from cni.dns.records import service_records
from cni.dns.server import DnsHandler, Listen
from cni.dns.zone import ClusterZone

LISTEN = Listen("127.0.0.1", 53)


@pytest.fixture
def handler() -> DnsHandler:
    zone = ClusterZone("cluster.local", ["10.96.0.10"])
    zone.synced = True
    zone.set_namespaces({"default"})
    many = {"addressType": "IPv4", "ports": [{"name": "p", "port": 1, "protocol": "TCP"}],
            "endpoints": [{"addresses": [f"10.244.1.{i}"]} for i in range(1, 61)]}
    big = {"metadata": {"name": "big", "namespace": "default"}, "spec": {"clusterIP": "None"}}
    zone.set_service("default/big", service_records(big, [many], "cluster.local"))
    return DnsHandler(zone, Metrics())


def ask(handler: DnsHandler, query: dns.message.Message, *, tcp: bool = False) -> tuple[bytes, dns.message.Message]:
    data = handler.handle(query.to_wire(), LISTEN, tcp)
    assert data is not None
    return data, dns.message.from_wire(data)


def test_udp_answer_over_512_octets_is_truncated_without_edns(handler):
    data, response = ask(handler, dns.message.make_query("big.default.svc.cluster.local", "A"))
    assert len(data) <= 512
    assert response.flags & dns.flags.TC
    assert 0 < len(response.answer[0]) < 60


def test_edns0_buffer_size_lets_the_whole_answer_through_and_is_echoed(handler):
    query = dns.message.make_query("big.default.svc.cluster.local", "A", use_edns=0, payload=4096)
    data, response = ask(handler, query)
    assert not response.flags & dns.flags.TC
    assert len(response.answer[0]) == 60 and len(data) > 512
    assert (response.edns, response.payload) == (0, 4096)


def test_tcp_is_never_truncated(handler):
    _, response = ask(handler, dns.message.make_query("_p._tcp.big.default.svc.cluster.local", "SRV"), tcp=True)
    assert not response.flags & dns.flags.TC
    assert len(response.answer[0]) == 60 and len(response.additional[0]) + len(response.additional) >= 60


def test_truncation_drops_additional_records_first(handler):
    query = dns.message.make_query("_p._tcp.big.default.svc.cluster.local", "SRV", use_edns=0, payload=5000)
    _, response = ask(handler, query)
    assert len(response.answer[0]) == 60
    assert response.flags & dns.flags.TC
    assert sum(len(r) for r in response.additional) < 60


def test_unreadable_query_is_formerr_and_a_response_is_dropped(handler):
    query = dns.message.make_query("x.cluster.local", "A").to_wire()
    reply = handler.handle(query[:15], LISTEN, False)
    assert reply is not None and dns.message.from_wire(reply).rcode() == dns.rcode.FORMERR
    assert handler.handle(query[:5], LISTEN, False) is None
    as_response = bytearray(query)
    as_response[2] |= 0x80
    assert handler.handle(bytes(as_response), LISTEN, False) is None


def test_other_opcodes_are_notimp_and_edns_version_1_is_badvers(handler):
    query = dns.message.make_query("x.cluster.local", "A")
    query.set_opcode(dns.opcode.NOTIFY)
    assert ask(handler, query)[1].rcode() == dns.rcode.NOTIMP
    _, response = ask(handler, dns.message.make_query("x.cluster.local", "A", use_edns=1))
    assert response.rcode() == dns.rcode.BADVERS


def test_parse_query_reads_the_question_and_opt():
    query = dns.message.make_query("Web.Default.svc.cluster.local", "SRV", use_edns=0, payload=1232, want_dnssec=True)
    parsed = wire.parse_query(query.to_wire())
    assert parsed.name == wire.name_wire("web.default.svc.cluster.local")
    assert (parsed.qtype, parsed.edns, parsed.udp_size, parsed.do) == (wire.SRV, True, 1232, True)
    with pytest.raises(wire.FormatError):
        wire.parse_query(b"\x00\x01\x01\x00\x00\x02" + b"\x00" * 6)


def test_metrics_count_requests_responses_and_durations(handler):
    ask(handler, dns.message.make_query("big.default.svc.cluster.local", "A"))
    ask(handler, dns.message.make_query("nope.default.svc.cluster.local", "AAAA"), tcp=True)
    ask(handler, dns.message.make_query("example.com", "A"))
    text = handler.metrics.render()
    server = 'server="dns://127.0.0.1:53"'
    assert f'coredns_dns_requests_total{{family="1",proto="udp",{server},type="A",view="",zone="."}} 2' in text
    assert f'coredns_dns_requests_total{{family="1",proto="tcp",{server},type="AAAA",view="",zone="."}} 1' in text
    assert f'coredns_dns_responses_total{{plugin="kubernetes",rcode="NXDOMAIN",{server},view="",zone="."}} 1' in text
    assert f'coredns_dns_responses_total{{plugin="",rcode="SERVFAIL",{server},view="",zone="."}} 1' in text
    assert f'coredns_dns_request_duration_seconds_count{{{server},type="A",view="",zone="."}} 2' in text
    assert f'coredns_dns_request_duration_seconds_bucket{{{server},type="A",view="",zone=".",le="+Inf"}} 2' in text


@pytest.mark.parametrize("text", ["127.0.0.1", "localhost:53", "127.0.0.1:0", "127.0.0.1:70000"])
def test_bad_listen_addresses_are_refused(text):
    with pytest.raises(ValueError, match="listen address"):
        Listen.parse(text)


def test_listen_labels_like_coredns():
    assert Listen.parse("[::1]:5353").server == "dns://[::1]:5353"
    assert (Listen.parse("[::1]:5353").family, Listen.parse("10.0.0.1:53").family) == ("2", "1")

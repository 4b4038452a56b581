"""Printers for networking.k8s.io (Ingress, IngressClass, NetworkPolicy, ServiceCIDR,
IPAddress) and discovery.k8s.io (EndpointSlice).

Ingress HOSTS shows up to three hosts ("*" when no rule names one) and PORTS is "80"
or "80, 443" when TLS is configured; ADDRESS lists the load balancer's IPs/hostnames in
full (the API server prints wide, so they are not clipped).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from apiserver.tables.cells import NONE, format_label_selector, get, items, list_with_more, mapping, meta
from apiserver.tables.duration import since
from apiserver.tables.printer import Printer, age_column, column, doc, name_column


def _name_age(obj: dict[str, Any], now: datetime, *middle: Any) -> list[Any]:
    m = meta(obj)
    return [m.get("name", ""), *middle, since(m.get("creationTimestamp"), now)]


def format_hosts(rules: list[Any]) -> str:
    """formatHosts: up to three rule hosts, "*" if none, " + N more..." counting rules."""
    hosts: list[str] = []
    more = False
    for rule in rules:
        if len(hosts) == 3:
            more = True
        if not more and isinstance(rule, dict) and rule.get("host"):
            hosts.append(rule["host"])
    if not hosts:
        return "*"
    joined = ",".join(hosts)
    return f"{joined} + {len(rules) - 3} more..." if more else joined


def _lb_addresses(obj: dict[str, Any]) -> str:
    found = {
        i.get("ip") or i.get("hostname")
        for i in items(obj, "status", "loadBalancer", "ingress")
        if isinstance(i, dict)
    }
    return ",".join(sorted(x for x in found if x))


def _ingress_cells(ing: dict[str, Any], now: datetime) -> list[Any]:
    spec = mapping(ing, "spec")
    class_name = spec.get("ingressClassName")
    return _name_age(
        ing,
        now,
        NONE if class_name is None else class_name,
        format_hosts(items(spec, "rules")),
        _lb_addresses(ing),
        "80, 443" if items(spec, "tls") else "80",
    )


def ingress_printer() -> Printer:
    columns = [
        name_column(),
        column(
            "Class",
            "string",
            "The name of the IngressClass resource that should be used for additional configuration",
        ),
        column("Hosts", "string", "Hosts that incoming requests are matched against before the ingress rule"),
        column("Address", "string", "Address is a list containing ingress points for the load-balancer"),
        column("Ports", "string", "Ports of TLS configurations that open"),
        age_column(),
    ]
    return Printer(columns, _ingress_cells)


def _ingressclass_cells(ic: dict[str, Any], now: datetime) -> list[Any]:
    params = get(ic, "spec", "parameters")
    shown = NONE
    if isinstance(params, dict):
        shown = params.get("kind", "")
        if params.get("apiGroup") is not None:
            shown += "." + params["apiGroup"]
        shown += "/" + params.get("name", "")
    return _name_age(ic, now, get(ic, "spec", "controller", default=""), shown)


def ingressclass_printer() -> Printer:
    columns = [
        name_column(),
        column("Controller", "string", "Controller that is responsible for handling this class"),
        column("Parameters", "string", "A reference to a resource with additional parameters"),
        age_column(),
    ]
    return Printer(columns, _ingressclass_cells)


def networkpolicy_printer() -> Printer:
    columns = [
        name_column(),
        column("Pod-Selector", "string", doc("networking.v1.NetworkPolicySpec", "podSelector")),
        age_column(),
    ]
    # podSelector is a required struct, so an absent one formats like an empty one
    return Printer(
        columns,
        lambda o, now: _name_age(o, now, format_label_selector(get(o, "spec", "podSelector", default={}))),
    )


def _slice_ports(ports: list[Any]) -> str:
    shown = []
    for p in ports:
        if p.get("port") is not None:
            shown.append(str(p["port"]))
        elif p.get("name") is not None:
            shown.append(p["name"])
        else:
            shown.append("*")
    return list_with_more(shown, len(shown))


def _slice_endpoints(endpoints: list[Any]) -> str:
    addresses = [str(a) for e in endpoints if isinstance(e, dict) for a in e.get("addresses") or []]
    return list_with_more(addresses, len(addresses))


def _endpointslice_cells(es: dict[str, Any], now: datetime) -> list[Any]:
    return _name_age(
        es,
        now,
        es.get("addressType", ""),
        _slice_ports(items(es, "ports")),
        _slice_endpoints(items(es, "endpoints")),
    )


def endpointslice_printer() -> Printer:
    es = "discovery.v1.EndpointSlice"
    columns = [
        name_column(),
        column("AddressType", "string", doc(es, "addressType")),
        column("Ports", "string", doc(es, "ports")),
        column("Endpoints", "string", doc(es, "endpoints")),
        age_column(),
    ]
    return Printer(columns, _endpointslice_cells)


def servicecidr_printer() -> Printer:
    columns = [
        name_column(),
        column("CIDRs", "string", doc("networking.v1beta1.ServiceCIDRSpec", "cidrs")),
        age_column(),
    ]
    return Printer(columns, lambda o, now: _name_age(o, now, ",".join(items(o, "spec", "cidrs"))))


def _ipaddress_cells(ip: dict[str, Any], now: datetime) -> list[Any]:
    ref = get(ip, "spec", "parentRef")
    parent = NONE
    if isinstance(ref, dict):
        group, resource = ref.get("group", ""), ref.get("resource", "")
        parent = (f"{resource}.{group}" if group else resource).lower()
        if ref.get("namespace"):
            parent += "/" + ref["namespace"]
        parent += "/" + ref.get("name", "")
    return _name_age(ip, now, parent)


def ipaddress_printer() -> Printer:
    columns = [
        name_column(),
        column("ParentRef", "string", doc("networking.v1beta1.IPAddressSpec", "parentRef")),
    ]
    return Printer(columns, _ipaddress_cells)

"""What `proxy_bench.py` concludes from its measurements: the issue's targets checked
(`summary`), a markdown table (`markdown`), and the top functions of a py-spy profile
(`top_functions`, from py-spy's raw collapsed stacks)."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a is not None and b else None


def summary(res: dict) -> dict:
    """The issue's targets for one proxy (routing, metrics, access log on) against nginx."""
    w, f = res.get("wrk", {}), res.get("fixed_rate", {})
    out: dict = {}
    if "mkp" in w and "nginx" in w:
        mkp, ngx, fm, fn = w["mkp"], w["nginx"], f["mkp"], f["nginx"]
        out.update({
            "mkp_rps": mkp["rps"], "nginx_rps": ngx["rps"], "mkp_vs_nginx": _ratio(mkp["rps"], ngx["rps"]),
            "target_0_8x_nginx_rps": mkp["rps"] >= 0.8 * ngx["rps"],
            "target_20000_rps": mkp["rps"] >= 20000,
            "added_p50_ms": fm.get("added_p50_ms"), "nginx_added_p50_ms": fn.get("added_p50_ms"),
            "added_p99_ms": fm.get("added_p99_ms"), "nginx_added_p99_ms": fn.get("added_p99_ms"),
            "vcpu_per_1000_rps": fm["vcpu_per_1000_rps"], "nginx_vcpu_per_1000_rps": fn["vcpu_per_1000_rps"],
            "target_0_1_vcpu_per_1000_rps": fm["vcpu_per_1000_rps"] <= 0.1,
            "peak_rss_mb": mkp["peak_rss_mb"], "target_30mb_rss": mkp["peak_rss_mb"] <= 30,
        })
        if fm.get("added_p50_ms") is not None and fn.get("added_p50_ms") is not None:
            out["target_latency_within_0_2ms_of_nginx"] = (
                fm["added_p50_ms"] - fn["added_p50_ms"] <= 0.2 and fm["added_p99_ms"] - fn["added_p99_ms"] <= 0.2)
    if "mkp-chain" in w and "mkp-mtls" in w:
        plain, mtls = f["mkp-chain"], f["mkp-mtls"]
        cpu = _ratio(mtls["vcpu_per_1000_rps"], plain["vcpu_per_1000_rps"])
        lat = _ratio(mtls.get("added_p50_ms"), plain.get("added_p50_ms"))
        out.update({"mtls_vs_plain_chain_cpu": cpu, "mtls_vs_plain_chain_added_p50": lat,
                    "mtls_vs_plain_chain_cpu_saturated": _ratio(w["mkp-mtls"]["cpu_s_per_1000_requests"],
                                                                w["mkp-chain"]["cpu_s_per_1000_requests"]),
                    "mtls_vs_plain_chain_rps": _ratio(w["mkp-chain"]["rps"], w["mkp-mtls"]["rps"]),
                    "target_mtls_hop_1_5x_plain": cpu is not None and cpu <= 1.5})
    elif "mkp-mtls" in res.get("not_measured", {}):
        out["target_mtls_hop_1_5x_plain"] = "not yet"
    if "mkp-c2" in w and "nginx" in w:
        out.update({"c2_rps": w["mkp-c2"]["rps"], "c2_vs_nginx": _ratio(w["mkp-c2"]["rps"], w["nginx"]["rps"]),
                    "c2_peak_rss_mb": w["mkp-c2"]["peak_rss_mb"]})
    return out


def _cell(v: object, fmt: str = "{}") -> str:
    return "–" if v is None else fmt.format(v)


def markdown(res: dict) -> str:
    w, f, s, m = res.get("wrk", {}), res.get("fixed_rate", {}), res.get("summary", {}), res.get("machine", {})
    rows = ["| target | rps (wrk) | wrk p50 / p99 ms | @1,000 rps p50 / p99 ms | added p50 / p99 ms "
            "| vCPU per 1,000 rps (@1,000) | CPU s per 1,000 req (wrk) | kernel share | RSS / peak MB "
            "| machine busy / steal (cores, wrk) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for t in ("direct", "mkp", "mkp-chain", "mkp-mtls", "mkp-c2", "nginx"):
        if t not in w:
            rows.append(f"| {t} | {res.get('not_measured', {}).get(t, 'not measured')[:120]} |||||||||")
            continue
        a, b = w[t], f[t]
        rows.append(f"| {t} | {a['rps']:,} | {a['p50_ms']} / {a['p99_ms']} | {b['p50_ms']} / {b['p99_ms']} "
                    f"| {_cell(b.get('added_p50_ms'))} / {_cell(b.get('added_p99_ms'))} | {b['vcpu_per_1000_rps']} "
                    f"| {a['cpu_s_per_1000_requests']} | {_cell(a.get('cpu_system_share'))} "
                    f"| {a['rss_mb']} / {a['peak_rss_mb']} | {a.get('machine_busy_cores')} / {a.get('steal_cores')} |")
    feats = res.get("features", {})
    lines = ["\n".join(rows), "",
             f"Telemetry on `mkp`: Istio stats filter {'on' if feats.get('istio_stats_filter') else 'off (refused)'}"
             f", metrics recorded: {feats.get('istio_metrics_recorded')}, access log configured (JSON file), "
             f"lines written: {feats.get('access_log_lines')}.", ""]
    lines += ["| target (issue 6) | measured | met |", "|---|---|---|"]
    if "mkp_rps" in s:
        lines += [f"| >= 0.8x nginx rps | {s['mkp_vs_nginx']}x ({s['mkp_rps']:,} vs {s['nginx_rps']:,}) "
                  f"| {s['target_0_8x_nginx_rps']} |",
                  f"| >= 20,000 rps, one process | {s['mkp_rps']:,} | {s['target_20000_rps']} |",
                  f"| added latency within 0.2 ms of nginx (p50, p99) | {s['added_p50_ms']} / {s['added_p99_ms']} ms"
                  f" vs nginx {s['nginx_added_p50_ms']} / {s['nginx_added_p99_ms']} ms "
                  f"| {s.get('target_latency_within_0_2ms_of_nginx')} |",
                  f"| <= 0.1 vCPU per 1,000 rps | {s['vcpu_per_1000_rps']} (nginx {s['nginx_vcpu_per_1000_rps']}) "
                  f"| {s['target_0_1_vcpu_per_1000_rps']} |",
                  f"| <= 30 MB RSS | {s['peak_rss_mb']} MB peak | {s['target_30mb_rss']} |"]
    mt = s.get("target_mtls_hop_1_5x_plain")
    if mt == "not yet":
        lines.append("| mTLS hop <= 1.5x plain hop | not yet (TLS listener refused) | not yet |")
    elif mt is not None:
        lines.append(f"| mTLS hop <= 1.5x plain hop | CPU {s['mtls_vs_plain_chain_cpu']}x at 1,000 rps, "
                     f"{s.get('mtls_vs_plain_chain_cpu_saturated')}x under wrk; added p50 "
                     f"{s['mtls_vs_plain_chain_added_p50']}x | {mt} |")
    if "c2_rps" in s:
        lines.append(f"| (not a target: `--concurrency 2`, two worker processes) | {s['c2_rps']:,} rps = "
                     f"{s['c2_vs_nginx']}x nginx, {s['c2_peak_rss_mb']} MB peak (parent + workers) | – |")
    meth = res.get("method", {})
    lines += ["", f"Machine: {m.get('cpus')} vCPU {m.get('cpu')}, {m.get('mem_mb')} MB, Linux {m.get('kernel')}, "
              f"Python {m.get('python')}, {m.get('nginx')}, commit {m.get('commit')} "
              f"({m.get('uncommitted_files')} uncommitted files in the tree). Load average at start "
              f"{meth.get('loadavg_at_start')}, at end {meth.get('loadavg_at_end')}. wrk {meth.get('wrk')}; "
              f"{meth.get('fixed_rate')}."]
    return "\n".join(lines)


_FRAME = re.compile(r"^(.*?) \((.*?)(?::\d+)?\)$")


def _func(frame: str) -> str:
    m = _FRAME.match(frame.strip())
    if not m:
        return frame.strip()
    name, path = m.groups()
    for marker in ("/proxy/", "/site-packages/", "/lib/python"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{name} ({path})"


def top_functions(collapsed: Path, n: int = 25) -> dict:
    """Self and inclusive shares of the samples, by function (lines merged)."""
    self_c: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines() if collapsed.exists() else []:
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        c = int(count)
        frames = [_func(fr) for fr in stack.split(";")]
        total += c
        self_c[frames[-1]] += c
        for fn in set(frames):
            incl[fn] += c
    pct = (lambda c: round(100 * c / total, 1)) if total else (lambda c: 0.0)
    return {"samples": total,
            "top_self_pct": [(fn, pct(c)) for fn, c in self_c.most_common(n)],
            "top_inclusive_pct": [(fn, pct(c)) for fn, c in incl.most_common(n * 2)]}

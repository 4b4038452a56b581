"""podinfo's Prometheus metrics in the text exposition format: the RED-method histogram
`http_request_duration_seconds{method,path,status}` (default buckets) and the counter
`http_requests_total{status}` that HPA tutorials scale on, plus process_* gauges read
from /proc (the real binary exports Go's and the process collector's)."""

from __future__ import annotations

import os
import re
import time

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_INVALID = re.compile(r"[^a-zA-Z0-9]+")
_START = time.time()


def url_to_label(path: str) -> str:
    """'/api/delay/{wait}' -> 'api_delay_wait'; '' or '/' -> 'root' (podinfo's rule)."""
    return _INVALID.sub("_", path).strip("_").lower() or "root"


class Metrics:
    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.histograms: dict[tuple[str, str, str], list[float]] = {}  # bucket counts..., sum, count

    def observe(self, method: str, path: str, status: int, seconds: float) -> None:
        code = str(status)
        self.counts[code] = self.counts.get(code, 0) + 1
        series = self.histograms.setdefault((method, path, code), [0.0] * (len(BUCKETS) + 2))
        for i, bound in enumerate(BUCKETS):
            if seconds <= bound:
                series[i] += 1
        series[-2] += seconds
        series[-1] += 1

    def render(self) -> str:
        out = ["# HELP http_request_duration_seconds Seconds spent serving HTTP requests.",
               "# TYPE http_request_duration_seconds histogram"]
        for (method, path, code), series in sorted(self.histograms.items()):
            labels = f'method="{method}",path="{path}",status="{code}"'
            for bound, count in zip(BUCKETS, series, strict=False):
                out.append(f'http_request_duration_seconds_bucket{{{labels},le="{bound:g}"}} {int(count)}')
            out.append(f'http_request_duration_seconds_bucket{{{labels},le="+Inf"}} {int(series[-1])}')
            out.append(f"http_request_duration_seconds_sum{{{labels}}} {series[-2]:g}")
            out.append(f"http_request_duration_seconds_count{{{labels}}} {int(series[-1])}")
        out += ["# HELP http_requests_total The total number of HTTP requests.",
                "# TYPE http_requests_total counter"]
        out += [f'http_requests_total{{status="{code}"}} {n}' for code, n in sorted(self.counts.items())]
        out += _process_metrics()
        return "\n".join(out) + "\n"


def _process_metrics() -> list[str]:
    times = os.times()
    rss = 0
    try:
        with open("/proc/self/statm") as statm:
            rss = int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        fds = len(os.listdir("/proc/self/fd"))
    except OSError:
        fds = 0
    return ["# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.",
            "# TYPE process_cpu_seconds_total counter",
            f"process_cpu_seconds_total {times.user + times.system:g}",
            "# HELP process_open_fds Number of open file descriptors.", "# TYPE process_open_fds gauge",
            f"process_open_fds {fds}",
            "# HELP process_resident_memory_bytes Resident memory size in bytes.",
            "# TYPE process_resident_memory_bytes gauge", f"process_resident_memory_bytes {rss}",
            "# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.",
            "# TYPE process_start_time_seconds gauge", f"process_start_time_seconds {_START:.2f}"]

"""Reading CRI logs as `kubectl logs` prints them: parsing, partial lines joined,
--timestamps in the kubelet's fixed 9-digit format, --tail, --since, --limit-bytes, and
--follow ending on `stop` or when the container has exited and the log is drained."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from kubelet.runtime.logs import format_timestamp, parse_line, parse_timestamp, read_log

LOG = (b"2026-11-26T05:00:00.1Z stdout F first\n"
       b"2026-11-26T05:00:01Z stderr F second\n"
       b"2026-11-26T05:00:02.000000005Z stdout P par\n"
       b"2026-11-26T05:00:03.5Z stdout P ti\n"
       b"2026-11-26T05:00:04.123456789Z stdout F al\n"
       b"2026-11-26T05:00:05Z stdout F \n"
       b"2026-11-26T05:00:06Z stdout F last\n")


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "0.log"
    path.write_bytes(LOG)
    return path


async def collect(path: Path, **options) -> bytes:
    return b"".join([chunk async for chunk in read_log(path, **options)])


def test_parse_line():
    entry = parse_line(b"2026-11-26T05:00:02.000000005Z stderr P some text  with spaces\n")
    assert (entry.stream, entry.partial, entry.content) == ("stderr", True, b"some text  with spaces")
    assert entry.timestamp_ns == parse_timestamp(b"2026-11-26T05:00:02Z") + 5
    assert parse_line(b"2026-11-26T05:00:02Z stdout F").content == b""
    for bad in (b"nonsense", b"2026-11-26T05:00:02Z stdin F x", b"2026-11-26T05:00:02Z stdout X x",
                b"yesterday stdout F x"):
        with pytest.raises(ValueError):
            parse_line(bad)


def test_timestamps_with_offsets_and_fixed_width_output():
    assert parse_timestamp(b"2026-11-26T07:00:00+02:00") == parse_timestamp(b"2026-11-26T05:00:00Z")
    assert format_timestamp(parse_timestamp(b"2026-11-26T05:00:00.1Z")) == "2026-11-26T05:00:00.100000000Z"


async def test_plain_output_joins_partials(log):
    assert await collect(log) == b"first\nsecond\npartial\n\nlast\n"


async def test_timestamps_prefix_each_printed_line_not_each_fragment(log):
    lines = (await collect(log, timestamps=True)).splitlines()
    assert lines[0] == b"2026-11-26T05:00:00.100000000Z first"
    assert lines[2] == b"2026-11-26T05:00:02.000000005Z partial"
    assert lines[3] == b"2026-11-26T05:00:05.000000000Z "


@pytest.mark.parametrize(("tail", "expected"), [
    pytest.param(0, b"", id="zero"),
    pytest.param(1, b"last\n", id="one"),
    pytest.param(3, b"al\n\nlast\n", id="counts-file-lines-like-the-kubelet"),
    pytest.param(100, b"first\nsecond\npartial\n\nlast\n", id="more-than-there-are"),
    pytest.param(-1, b"first\nsecond\npartial\n\nlast\n", id="all"),
])
async def test_tail(log, tail, expected):
    assert await collect(log, tail_lines=tail) == expected


async def test_since_and_limit_bytes(log):
    assert await collect(log, since=datetime(2026, 11, 26, 5, 0, 5, tzinfo=UTC)) == b"\nlast\n"
    assert await collect(log, limit_bytes=9) == b"first\nsec"
    assert await collect(log, limit_bytes=0) == b""


async def test_tail_over_many_blocks(tmp_path):
    path = tmp_path / "big.log"
    path.write_bytes(b"".join(b"2026-11-26T05:00:00Z stdout F line %d\n" % i for i in range(20000)))
    assert await collect(path, tail_lines=2) == b"line 19998\nline 19999\n"


async def test_follow_streams_new_lines_until_stopped(tmp_path):
    path = tmp_path / "f.log"
    path.write_bytes(b"2026-11-26T05:00:00Z stdout F one\n")
    stop = asyncio.Event()
    seen: list[bytes] = []

    async def reader():
        async for chunk in read_log(path, follow=True, stop=stop):
            seen.append(chunk)

    task = asyncio.create_task(reader())
    await asyncio.sleep(0.05)
    with open(path, "ab") as f:
        f.write(b"2026-11-26T05:00:01Z stdout F t")  # half a line: not printed yet
        f.flush()
        await asyncio.sleep(0.15)
        assert seen == [b"one\n"]
        f.write(b"wo\n")
    await asyncio.sleep(0.25)
    assert seen == [b"one\n", b"two\n"]
    stop.set()
    await asyncio.wait_for(task, 1)


async def test_follow_ends_when_the_container_has_exited_and_the_log_is_drained(tmp_path):
    path, state = tmp_path / "f.log", tmp_path / "state"
    state.mkdir()
    path.write_bytes(b"2026-11-26T05:00:00Z stdout F one\n")
    task = asyncio.create_task(collect(path, follow=True, state_dir=state))
    await asyncio.sleep(0.15)
    assert not task.done()
    with open(path, "ab") as f:
        f.write(b"2026-11-26T05:00:01Z stdout F two\n")
    (state / "exit").write_text("exit_code=0\n")
    assert await asyncio.wait_for(task, 1) == b"one\ntwo\n"

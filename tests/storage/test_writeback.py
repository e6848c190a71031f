"""Writeback behind the write head (``arkserve.storage.writeback``): a file being written is made durable while
it is written, window by window, so its final fsync has little left; the API's spliced uploads (one-shot and
resumed sessions) and ``arkserve disk get``'s spliced downloads use it, from the offset they start at.

The pages' dirty bits are read from the kernel (``/proc/self/pagemap`` + ``/proc/kpageflags``, root only)."""

from __future__ import annotations

import ctypes
import mmap
import os
import struct
from collections.abc import Callable
from pathlib import Path

import pytest

from arkserve.cli import disk_transfer as xfer
from arkserve.storage import writeback
from arkserve.storage.writeback import WAIT_AFTER, WRITE, Writeback
from tests.required import unavailable
from tests.storage.test_disk_transfer import MIB, Api, api  # noqa: F401  (fixture)

PAGE = os.sysconf("SC_PAGE_SIZE")


def dirty_pages(path: Path, first: int, end: int) -> tuple[int, int]:
    """(pages in the page cache, dirty ones among them) of ``path``'s bytes ``first..end``."""
    fd = os.open(path, os.O_RDWR)
    m = mmap.mmap(fd, end)
    anchor = ctypes.c_char.from_buffer(m)
    base = ctypes.addressof(anchor)
    present = dirty = 0
    try:
        with open("/proc/self/pagemap", "rb") as pagemap, open("/proc/kpageflags", "rb") as flags:
            for off in range(first, end, PAGE):
                _ = m[off]  # mapped (read: nothing is dirtied by looking)
                pagemap.seek((base + off) // PAGE * 8)
                entry = struct.unpack("Q", pagemap.read(8))[0]
                pfn = entry & ((1 << 55) - 1)
                if not entry >> 63 or not pfn:
                    continue
                flags.seek(pfn * 8)
                present += 1
                dirty += (struct.unpack("Q", flags.read(8))[0] >> 4) & 1  # KPF_DIRTY
    finally:
        del anchor
        m.close()
        os.close(fd)
    return present, dirty


def _write(path: Path, size: int, advance: Callable[[int, int], None] = lambda fd, head: None) -> bytes:
    data = os.urandom(size)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for off in range(0, size, 256 << 10):
            os.write(fd, data[off:off + (256 << 10)])
            advance(fd, off + len(data[off:off + (256 << 10)]))
    finally:
        os.close(fd)
    return data


@pytest.fixture
def kernel_view(tmp_path: Path) -> None:
    """Skip (or fail, in CI) where the pages' flags cannot be read or dirty pages do not show in them."""
    if writeback._SYNC_FILE_RANGE is None:
        unavailable("ARKSERVE_REQUIRE_PAGEFLAGS", "no sync_file_range(2) on this system")
    try:
        _write(tmp_path / "probe.bin", MIB)
        _, dirty = dirty_pages(tmp_path / "probe.bin", 0, MIB)
    except OSError as exc:
        unavailable("ARKSERVE_REQUIRE_PAGEFLAGS", f"the pages' flags cannot be read ({exc}; root reads them)")
    if not dirty:
        unavailable("ARKSERVE_REQUIRE_PAGEFLAGS", "a file just written shows no dirty pages in /proc/kpageflags")


def test_written_windows_are_clean_before_the_fsync(tmp_path: Path, kernel_view: None) -> None:
    wbs: dict[int, Writeback] = {}

    def advance(fd: int, head: int) -> None:
        wbs.setdefault(fd, Writeback(fd, 0, window=MIB)).advance(head)

    data = _write(tmp_path / "f.bin", 8 * MIB, advance)
    wb = next(iter(wbs.values()))
    assert wb.started == 8 * MIB and wb.waited == 7 * MIB  # the last window started, the ones before waited for
    present, dirty = dirty_pages(tmp_path / "f.bin", 0, wb.waited)
    assert present > 0 and dirty == 0, f"{dirty} of {present} pages still dirty behind the write head"
    _write(tmp_path / "g.bin", 8 * MIB)  # the same without: the pages stay dirty until an fsync
    assert dirty_pages(tmp_path / "g.bin", 0, 7 * MIB)[1] > 0
    assert (tmp_path / "f.bin").read_bytes() == data


@pytest.fixture
def synced(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int, int]]:
    """(offset, count, flags) of every sync_file_range the code makes (the real call, recorded), in windows of
    1 MiB."""
    real = writeback._SYNC_FILE_RANGE
    if real is None:
        unavailable("ARKSERVE_REQUIRE_PAGEFLAGS", "no sync_file_range(2) on this system")
    calls: list[tuple[int, int, int]] = []

    def recorded(fd: int, offset: int, count: int, flags: int) -> int:
        calls.append((offset, count, flags))
        return real(fd, offset, count, flags)

    monkeypatch.setattr(writeback, "_SYNC_FILE_RANGE", recorded)
    monkeypatch.setattr(writeback, "WINDOW", MIB)
    return calls


def _windows(calls: list[tuple[int, int, int]], start: int) -> tuple[int, int]:
    """Where the started and the waited-for writeback reach, checking they run gapless from ``start``."""
    reach = {WRITE: start, WAIT_AFTER: start}
    for offset, count, flags in calls:
        kind = WAIT_AFTER if flags & WAIT_AFTER else WRITE
        assert offset == reach[kind] and count > 0, calls
        reach[kind] = offset + count
    return reach[WRITE], reach[WAIT_AFTER]


@pytest.mark.parametrize("spliced", [True, False], ids=["spliced", "hashed"])
def test_a_resumed_upload_writes_back_from_its_offset(api: Api, synced: list[tuple[int, int, int]],  # noqa: F811
                                                      spliced: bool) -> None:
    """An unsigned-payload PATCH is spliced (``arkserve.api.transfer``); one with its body's hash signed goes
    through Python to be hashed (``arkserve.storage.staging``): both write back from the stored offset."""
    data = os.urandom(xfer.RESUMABLE_FROM + 6 * MIB)
    cut = 3 * MIB + 12345
    with api.http() as http:
        session = http.post("/uploads", json={"path": "wb.bin", "size": len(data)}).json()
        first = http.patch(f"/uploads/{session['id']}", params={"offset": 0}, content=data[:cut],
                           headers={"Content-Length": str(cut)})
        assert first.json()["offset"] == cut and not first.json()["complete"]
        synced.clear()
        body = iter([data[cut:]]) if spliced else data[cut:]  # an iterator is sent as an unsigned payload
        rest = http.patch(f"/uploads/{session['id']}", params={"offset": cut}, content=body,
                          headers={"Content-Length": str(len(data) - cut)})
        assert rest.status_code == 200 and rest.json()["complete"], rest.text
    started, waited = _windows(synced, cut)
    assert started > len(data) - 2 * MIB and waited > len(data) - 3 * MIB  # windows behind the head, from ``cut``
    assert (api.disk / "wb.bin").read_bytes() == data
    assert not list((api.disk).glob("*.part"))  # nothing but the whole file under a name


def test_a_spliced_download_writes_back_from_its_offset(api: Api, tmp_path: Path,  # noqa: F811
                                                        synced: list[tuple[int, int, int]]) -> None:
    data = os.urandom(9 * MIB)
    local = tmp_path / "d.bin"
    with api.http() as http, xfer.progress() as bar:
        assert http.put("/files/d.bin", content=data).status_code == 201
        (tmp_path / "d.bin.part").write_bytes(data[:2 * MIB])  # an interrupted download, resumed with Range
        (tmp_path / "d.bin.part.etag").write_text(http.get("/files/d.bin", headers={"Range": "bytes=0-0"})
                                                  .headers["etag"])
        synced.clear()
        assert xfer.get_file(http, "d.bin", local, bar=bar) == len(data)
    started, waited = _windows(synced, 2 * MIB)
    assert started > len(data) - 2 * MIB and waited > len(data) - 3 * MIB
    assert local.read_bytes() == data and not (tmp_path / "d.bin.part").exists()

"""Recordings on the client side: Vaani's ``stream_recording`` (wire, gate, retries, errors
without the key) and the download service's resume and never-replace rules, driving the real
``VaaniProvider`` through ``httpx.MockTransport`` (the network is the one seam)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from campaigns.errors import UserError
from campaigns.outputs import protected_paths
from campaigns.services.recordings import (
    RecordingsSummary,
    download_all,
    prepare,
    recording_name,
)
from scheduler.errors import AuthenticationError, NotFoundError, ProtocolError
from scheduler.providers.base import RecordingSource
from scheduler.providers.vaani import VaaniProvider
from scheduler.providers.voisnap import VoisnapProvider
from storage.recordings import AnsweredCall
from tests.test_client_unit import KEY, Recorder, RecordingGate, client_for

AUDIO = b"OggS" + bytes(range(256)) * 8


def _range_server(audio: bytes = AUDIO) -> Any:
    """Answers like the sandbox: 200 whole, 206 from ``Range: bytes=N-``."""

    def answer(request: httpx.Request) -> httpx.Response:
        wanted = request.headers.get("range")
        if wanted is None:
            return httpx.Response(200, content=audio, headers={"content-type": "audio/ogg"})
        start = int(wanted.removeprefix("bytes=").rstrip("-"))
        return httpx.Response(
            206,
            content=audio[start:],
            headers={"content-range": f"bytes {start}-{len(audio) - 1}/{len(audio)}"},
        )

    return answer


async def _read(client: VaaniProvider, call_id: str, offset: int = 0) -> tuple[int, Any, bytes]:
    async with client, client.stream_recording(call_id, offset=offset) as rec:
        return rec.offset, rec.total, b"".join([c async for c in rec.chunks])


def test_vaani_is_a_recording_source_and_voisnap_is_not() -> None:
    assert isinstance(VaaniProvider(KEY), RecordingSource)
    assert not isinstance(VoisnapProvider(KEY), RecordingSource)


def test_whole_recording_through_the_gate() -> None:
    rec, gate = Recorder(_range_server()), RecordingGate()
    got = asyncio.run(_read(client_for(rec, gate=gate), "outbound-1/x"))
    assert got == (0, len(AUDIO), AUDIO)
    (request,) = rec.requests
    assert request.url.raw_path == b"/api/stream/outbound-1%2Fx"
    assert request.headers["x-api-key"] == KEY and "range" not in request.headers
    assert [(e[0], e[1], e[2]) for e in gate.events] == [
        ("acquire", "poll", None),
        ("observe", "poll", 200),
    ]


def test_offset_asks_for_a_range() -> None:
    rec = Recorder(_range_server())
    assert asyncio.run(_read(client_for(rec), "c-1", offset=100)) == (100, len(AUDIO), AUDIO[100:])
    assert rec.requests[0].headers["range"] == "bytes=100-"


def test_server_errors_are_retried_and_errors_carry_no_key() -> None:
    rec = Recorder(httpx.Response(503, json={"detail": "busy"}), _range_server())
    assert asyncio.run(_read(client_for(rec), "c-1"))[2] == AUDIO
    assert len(rec.requests) == 2
    with pytest.raises(NotFoundError):
        asyncio.run(_read(client_for(Recorder(httpx.Response(404, json={"detail": "no"}))), "c"))
    echo = httpx.Response(401, json={"detail": f"key {KEY} is not valid"})
    with pytest.raises(AuthenticationError) as err:
        asyncio.run(_read(client_for(Recorder(echo)), "c"))
    assert KEY not in str(err.value) and KEY not in err.value.user_message()
    bad = httpx.Response(206, content=b"x", headers={"content-range": "lots"})
    with pytest.raises(ProtocolError):
        asyncio.run(_read(client_for(Recorder(bad)), "c"))


# --------------------------------------------------------------------------- the service


class _Breaks(httpx.AsyncByteStream):
    """A body whose connection resets after ``cut`` bytes."""

    def __init__(self, data: bytes, cut: int) -> None:
        self.data, self.cut = data, cut

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.data[: self.cut]
        raise httpx.ReadError("connection reset by peer")


def _calls(*ids: str) -> list[AnsweredCall]:
    return [AnsweredCall(attempt_id=i + 1, call_id=c, provider="vaani") for i, c in enumerate(ids)]


def _download(rec: Recorder, out: Path, calls: list[AnsweredCall]) -> RecordingsSummary:
    targets = prepare(calls, out, ())

    async def go() -> RecordingsSummary:
        async with client_for(rec) as client:
            return await download_all(client, targets, str(out))

    return asyncio.run(go())


def test_a_connection_lost_midway_resumes_with_a_range(tmp_path: Path) -> None:
    whole = _range_server()
    broken = httpx.Response(
        200, stream=_Breaks(AUDIO, 300), headers={"content-length": str(len(AUDIO))}
    )
    rec = Recorder(broken, whole)
    summary = _download(rec, tmp_path, _calls("c-1"))
    assert (tmp_path / "1-c-1.ogg").read_bytes() == AUDIO
    assert [r.headers.get("range") for r in rec.requests] == [None, "bytes=300-"]
    assert summary.count("downloaded") == 1 and not list(tmp_path.glob("*.part"))


def test_present_files_are_kept_parts_resume_and_other_files_are_not_replaced(
    tmp_path: Path,
) -> None:
    calls = _calls("done", "half", "dir", "link", "gone", "../../etc/passwd")
    (tmp_path / "1-done.ogg").write_bytes(b"an earlier download")
    (tmp_path / "2-half.ogg.part").write_bytes(AUDIO[:50])
    (tmp_path / "3-dir.ogg").mkdir()
    (tmp_path / "elsewhere").write_bytes(b"not ours")
    os.symlink(tmp_path / "elsewhere", tmp_path / "4-link.ogg")

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.raw_path.endswith(b"/gone"):
            return httpx.Response(404, json={"detail": "no recording"})
        return _range_server()(request)

    rec = Recorder(answer)
    summary = _download(rec, tmp_path, calls)
    assert [f.status for f in summary.files] == [
        "present",
        "resumed",
        "skipped",
        "skipped",
        "unavailable",
        "downloaded",
    ]
    assert (tmp_path / "1-done.ogg").read_bytes() == b"an earlier download"
    assert (tmp_path / "2-half.ogg").read_bytes() == AUDIO
    assert (tmp_path / "elsewhere").read_bytes() == b"not ours"
    assert (tmp_path / "6-etc_passwd.ogg").read_bytes() == AUDIO  # the id cannot leave DIR
    assert summary.downloaded_bytes == len(AUDIO) - 50 + len(AUDIO)
    assert [r.headers.get("range") for r in rec.requests] == ["bytes=50-", None, None]


def test_names_are_safe_and_the_database_is_never_a_target(tmp_path: Path) -> None:
    assert recording_name(7, "outbound-1776774443-863aa698") == "7-outbound-1776774443-863aa698.ogg"
    assert recording_name(8, "a b/c\\d:e") == "8-a_b_c_d_e.ogg"
    assert recording_name(9, "...") == "9-call.ogg"
    db = tmp_path / "7-c.ogg"  # a database someone named like a recording
    db.write_bytes(b"SQLite format 3")
    guard = protected_paths(f"sqlite:///{db}")
    with pytest.raises(UserError, match="the campaign database"):
        prepare([AnsweredCall(attempt_id=7, call_id="c", provider="vaani")], tmp_path, guard)
    with pytest.raises(UserError, match="not a directory"):
        prepare([], db, ())

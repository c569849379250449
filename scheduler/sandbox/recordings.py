"""The sandbox's call recordings: ``GET /api/stream/{call_id}`` on the Vaani front-end.

An answered call that has ended has a recording: deterministic audio-like bytes (an Ogg page
header, then pseudo-random bytes from the call's own seed), about 2 KB per second of call, so
that a download can be checked byte for byte against ``/sandbox/recording/{call_id}`` (the
ground truth, outside the API). Any other call (unknown, still going on, not answered) is a
404, as the real service answers for a call without audio.

The answer is ``audio/ogg`` with a ``Content-Length``, streamed in chunks, and honours
``Range: bytes=N-`` (and ``bytes=N-M``) with a 206 and its ``Content-Range``, so that a
download cut off midway resumes where it stopped; a range past the end is a 416. It goes
through the sandbox ``Gate`` like every API route (auth, rate limit, faults), and
``/sandbox/stats`` counts what was served under ``recordings`` (``full``, ``partial``,
``bytes``).
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from scheduler.sandbox.sim import Call
from scheduler.sandbox.state import SandboxState

#: bytes of recording per second of call
BYTES_PER_SECOND = 2048
CHUNK = 16 * 1024
#: an Ogg page header ("OggS", version 0, beginning-of-stream): what audio players sniff
_OGG_HEAD = b"OggS\x00\x02" + bytes(8)
_RANGE = re.compile(r"bytes=(\d+)-(\d*)")


def has_recording(call: Call, now: float) -> bool:
    """Only an answered call that has ended was recorded."""
    return call.outcome == "completed" and now >= call.end


def recording_bytes(seed: int, call: Call) -> bytes:
    """The call's recording: the same bytes for the same sandbox seed and call, every time."""
    size = max(len(_OGG_HEAD) + 1, round(call.total_s * BYTES_PER_SECOND))
    rng = random.Random(f"{seed}:{call.call_id}:recording")
    return _OGG_HEAD + rng.randbytes(size - len(_OGG_HEAD))


def _chunks(data: bytes) -> Iterator[bytes]:
    for i in range(0, len(data), CHUNK):
        yield data[i : i + CHUNK]


def _requested(header: str | None, total: int) -> tuple[int, int] | str | None:
    """The byte range asked for as (first, last) inclusive; None for the whole recording (no
    header, or one we do not read, which RFC 9110 lets a server ignore); "past" when it starts
    at or beyond the end."""
    m = _RANGE.fullmatch(header.strip()) if header else None
    if m is None:
        return None
    first = int(m.group(1))
    last = min(int(m.group(2)), total - 1) if m.group(2) else total - 1
    if first >= total or last < first:
        return "past"
    return first, last


async def stream(request: Request) -> Response:
    """``GET /api/stream/{call_id}``: the recording, whole (200) or from a range (206)."""
    state: SandboxState = request.app.state.sandbox
    state.catch_up()
    call_id = request.path_params["call_id"]
    call = request.scope["sandbox.account"].by_id.get(call_id)
    if call is None:
        return JSONResponse({"detail": f"call {call_id!r} not found"}, status_code=404)
    if not has_recording(call, state.clock()):
        return JSONResponse(
            {"detail": f"no recording for call {call_id!r} (not answered, or not ended yet)"},
            status_code=404,
        )
    audio = recording_bytes(state.seed, call)
    total = len(audio)
    wanted = _requested(request.headers.get("range"), total)
    counts = state.stats.recordings
    if wanted == "past":
        return Response(
            status_code=416, headers={"content-range": f"bytes */{total}", "accept-ranges": "bytes"}
        )
    headers = {"accept-ranges": "bytes"}
    if isinstance(wanted, tuple):
        first, last = wanted
        body, status = audio[first : last + 1], 206
        headers["content-range"] = f"bytes {first}-{last}/{total}"
        counts["partial"] += 1
    else:
        body, status = audio, 200
        counts["full"] += 1
    counts["bytes"] += len(body)
    headers["content-length"] = str(len(body))
    return StreamingResponse(
        _chunks(body), status_code=status, headers=headers, media_type="audio/ogg"
    )


async def ground_truth(request: Request) -> Response:
    """``GET /sandbox/recording/{call_id}``: the whole recording a placed call has, outside
    the API (no key, not counted): what a download must equal."""
    state: SandboxState = request.app.state.sandbox
    call_id = request.path_params["call_id"]
    call = next((c for c in state.placed if c.call_id == call_id), None)
    if call is None or not has_recording(call, state.clock()):
        return JSONResponse({"detail": f"no recording for call {call_id!r}"}, status_code=404)
    return Response(recording_bytes(state.seed, call), media_type="audio/ogg")

"""The sandbox's ``GET /api/stream/{call_id}`` over a real socket: audio for answered calls
that ended, Range requests for resuming, 404s for the rest, and the Gate in front of it."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from tests.conftest import Sandbox


def _place(sb: Sandbox, number: str, **hooks: object) -> str:
    body = {
        "agent_id": "agent-1",
        "medium": "telephony",
        "contact_number": number,
        "name": "Asha",
        "metadata": {"sandbox_call_seconds": 0.3, **hooks},
    }
    res = httpx.post(
        f"{sb.base_url}/api/trigger-call/", json=body, headers={"X-API-Key": sb.api_key}
    )
    assert res.status_code == 200, res.text
    return str(res.json()["call_id"])


def _wait_final(sb: Sandbox, *call_ids: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        final = {c["call_id"] for c in sb.calls() if c["final"]}
        if final >= set(call_ids):
            return
        time.sleep(0.05)
    raise AssertionError("the calls did not end")


def test_stream_serves_answered_calls_with_ranges(
    sandbox_factory: Callable[..., Sandbox],
) -> None:
    sb = sandbox_factory("--answer-rate", "1", "--seed", "3")
    answered = _place(sb, "+14155550101")
    missed = _place(sb, "+14155550102", sandbox_outcome="no_answer")
    key = {"X-API-Key": sb.api_key}
    url = f"{sb.base_url}/api/stream/"
    early = httpx.get(url + answered, headers=key)
    _wait_final(sb, answered, missed)
    assert early.status_code == 404  # not ended yet: no recording

    whole = httpx.get(url + answered, headers=key)
    assert whole.status_code == 200 and whole.headers["content-type"] == "audio/ogg"
    audio = whole.content
    assert whole.headers["content-length"] == str(len(audio)) and audio.startswith(b"OggS")
    assert 0.3 * 2048 - 2 <= len(audio) <= 0.3 * 2048 + 2  # about 2 KB per second of call
    assert httpx.get(f"{sb.base_url}/sandbox/recording/{answered}").content == audio
    assert httpx.get(url + answered, headers=key).content == audio  # deterministic

    part = httpx.get(url + answered, headers={**key, "Range": "bytes=100-"})
    assert part.status_code == 206 and part.content == audio[100:]
    assert part.headers["content-range"] == f"bytes 100-{len(audio) - 1}/{len(audio)}"
    middle = httpx.get(url + answered, headers={**key, "Range": "bytes=10-19"})
    assert middle.status_code == 206 and middle.content == audio[10:20]
    past = httpx.get(url + answered, headers={**key, "Range": f"bytes={len(audio)}-"})
    assert past.status_code == 416 and past.headers["content-range"] == f"bytes */{len(audio)}"

    assert httpx.get(url + missed, headers=key).status_code == 404
    assert httpx.get(url + "outbound-0-nope", headers=key).status_code == 404
    assert httpx.get(url + answered).status_code == 401  # the Gate: no key, no audio
    stats = sb.stats()
    assert stats["requests"]["stream"] == 9
    assert stats["recordings"] == {
        "full": 2,
        "partial": 2,
        "bytes": 2 * len(audio) + len(audio) - 100 + 10,
    }

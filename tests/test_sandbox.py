"""The sandbox (``vaani-campaigns sandbox``): its parsers and algorithms in process, and the real
server over loopback for lifecycle, determinism, rate limits, faults, background traffic and
paging. The official SDK's view of it is in ``test_sandbox_sdk.py``.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from campaigns.cli import build_cli
from campaigns.cli.common import handle_errors
from scheduler.sandbox.config import (
    DEFAULT_API_KEY,
    FaultRates,
    RateLimit,
    SandboxConfig,
    parse_faults,
    parse_rate_limit,
    parse_seconds_range,
)
from scheduler.sandbox.faults import roll
from scheduler.sandbox.limits import RateLimiter
from scheduler.sandbox.sim import Call, derive_facts, draw_outcome, slug
from scheduler.sandbox.state import SandboxState
from tests.conftest import TEST_API_KEY, Sandbox

SandboxFactory = Callable[..., Sandbox]
FINAL = {"completed", "no_answer", "busy", "failed", "voicemail"}
ORDER = ["queued", "ringing", "in_progress", "completed"]


_clients: dict[tuple[str, str], httpx.Client] = {}


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _clients:
        _clients.popitem()[1].close()


def client(sb: Sandbox, key: str | None = None) -> httpx.Client:
    """One keep-alive client per sandbox and key (a new httpx client per request is slow)."""
    ident = (sb.base_url, key or sb.api_key)
    if ident not in _clients:
        _clients[ident] = httpx.Client(
            base_url=sb.base_url, headers={"X-API-Key": ident[1]}, timeout=10
        )
    return _clients[ident]


def trigger(
    sb: Sandbox, number: str = "+14155550123", name: str = "Anna Maria", **fields: Any
) -> httpx.Response:
    body = {"agent_id": "agent-1", "medium": "telephony", "contact_number": number, "name": name}
    body.update(fields)
    return client(sb).post("/api/trigger-call/", json=body)


def get(sb: Sandbox, path: str, key: str | None = None, **params: Any) -> httpx.Response:
    return client(sb, key).get(path, params=params)


def calls(sb: Sandbox) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = client(sb).get("/sandbox/calls").json()["calls"]
    return result


def stats(sb: Sandbox) -> dict[str, Any]:
    result: dict[str, Any] = client(sb).get("/sandbox/stats").json()
    return result


def wait_final(sb: Sandbox, count: int, timeout: float = 15.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        found = calls(sb)
        if len(found) == count and all(c["final"] for c in found):
            return found
        assert time.monotonic() < deadline, f"calls not final in time: {found}"
        time.sleep(0.05)


# ------------------------------------------------------------------ parsers (property tests)


@given(st.integers(1, 10**6), st.sampled_from(["s", "sec", "min", "minute", "S", "MIN"]))
def test_parse_rate_limit_accepts_n_per_unit(n: int, unit: str) -> None:
    rate = parse_rate_limit(f"{n}/{unit}")
    assert rate == RateLimit(n, 1.0 if unit.lower().startswith("s") else 60.0)


@given(st.text(max_size=12))
def test_parse_rate_limit_rejects_garbage_with_the_flag_name(text: str) -> None:
    try:
        rate = parse_rate_limit(text)
    except ValueError as exc:
        assert "--rate-limit" in str(exc)
    else:
        assert rate.limit >= 1 and rate.period_s in (1.0, 60.0)


@given(st.floats(0.001, 1000), st.floats(0, 1000))
def test_parse_seconds_range(lo: float, extra: float) -> None:
    assert parse_seconds_range(f"{lo}-{lo + extra}") == (lo, lo + extra)


@pytest.mark.parametrize("text", ["", "4-1", "0-2", "a-b", "1-2-3", "-1"])
def test_parse_seconds_range_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="--call-seconds"):
        parse_seconds_range(text)


def test_parse_faults() -> None:
    assert parse_faults("429=0.05, 5xx=0.02,lost=0.02,slow=0.01") == FaultRates(
        0.05, 0.02, 0.02, 0.01
    )
    assert not parse_faults("").any
    for bad in ("429=2", "oops=0.1", "lost", "lost=x", "lost=0.6,slow=0.6"):
        with pytest.raises(ValueError, match="--faults"):
            parse_faults(bad)


def test_fault_roll_frequencies() -> None:
    rng = random.Random(5)
    rates = FaultRates(rate_429=0.1, rate_5xx=0.2, lost=0.3, slow=0.0)
    counts = Counter(roll(rates, rng) for _ in range(20000))
    assert counts["slow"] == 0
    for kind, p in (("429", 0.1), ("5xx", 0.2), ("lost", 0.3), (None, 0.4)):
        assert abs(counts[kind] / 20000 - p) < 0.02, counts


# ------------------------------------------------------------------ GCRA


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_gcra_burst_then_paced() -> None:
    clock = FakeClock()
    limiter = RateLimiter(RateLimit(5, 1.0), clock=clock)
    decisions = [limiter.check("k") for _ in range(6)]
    assert [d.allowed for d in decisions] == [True] * 5 + [False]
    assert [d.remaining for d in decisions] == [4, 3, 2, 1, 0, 0]
    assert decisions[-1].retry_after_s == pytest.approx(0.2)
    assert dict(decisions[-1].headers())[b"retry-after"] == b"1"
    assert limiter.check("other").allowed  # per key
    clock.t += 0.2
    assert limiter.check("k").allowed
    assert not limiter.check("k").allowed
    clock.t += 1.0  # a full period later the whole burst is back
    assert limiter.check("k").remaining == 4


# ------------------------------------------------------------------ derivation and lifecycle


def test_derived_entity_is_predictable() -> None:
    created = datetime(2026, 3, 1, 23, 59, tzinfo=UTC).timestamp()
    meta = {"sandbox_opt_out": "yes", "sandbox_entity_plan": "gold"}
    entity, summary, transcript = derive_facts("Anna Maria O'Neil", "ag", meta, created)
    # 14 letters: even -> interested; 14 % 7 + 1 = 1 day after 2026-03-01 (UTC)
    assert entity == {
        "email": "anna.maria.o.neil@example.com",
        "interested": True,
        "preferred_date": "2026-03-02",
        "plan": "gold",
        "opt_out": True,
    }
    assert "Anna Maria O'Neil is interested" in summary
    assert transcript[-1]["text"] == "Please do not call me again."
    assert derive_facts("Bob Li", "ag", {"email": "b@x.org"}, created)[0]["email"] == "b@x.org"
    assert slug("  ") == "contact"


def test_call_status_phases() -> None:
    call = Call(
        call_id="c", agent_id="a", contact_number="+1", name="n", call_type="outbound",
        metadata={}, created=100.0, total_s=10.0, outcome="completed", speed=2.0,
    )  # fmt: skip
    assert [call.status(t) for t in (100.0, 100.6, 102.0, 104.9, 105.0)] == [
        "queued", "ringing", "in_progress", "in_progress", "completed",
    ]  # fmt: skip
    assert call.record(101.0)["duration_ms"] is None
    assert call.record(105.0)["duration_ms"] == 10000
    missed = Call(
        call_id="d", agent_id="a", contact_number="+1", name="n", call_type="outbound",
        metadata={}, created=100.0, total_s=10.0, outcome="busy", speed=1.0,
    )  # fmt: skip
    assert missed.status(108.0) == "ringing"
    assert missed.record(110.0)["duration_ms"] == 0
    assert missed.details(110.0)["entity"] == {}


def test_draw_outcome_honours_answer_rate() -> None:
    rng = random.Random(1)
    counts = Counter(draw_outcome(rng, 0.7) for _ in range(20000))
    assert abs(counts["completed"] / 20000 - 0.7) < 0.015
    assert set(counts) == FINAL
    assert Counter(draw_outcome(rng, 0.0) for _ in range(500))["completed"] == 0


# ------------------------------------------------------------------ the real server


def test_validation_auth_and_not_found(sandbox: Sandbox) -> None:
    bad: list[dict[str, Any]] = [
        {"agent_id": None},
        {"agent_id": ""},
        {"contact_number": "4155550123"},
        {"contact_number": "+1415555"},
        {"contact_number": "+999123456789"},
        {"contact_number": None},
        {"name": ""},
        {"medium": "webrtc"},
        {"metadata": ["x"]},
        {"metadata": {"sandbox_outcome": "answered"}},
        {"metadata": {"sandbox_call_seconds": "-1"}},
    ]
    for fields in bad:
        r = trigger(sandbox, **fields)
        assert r.status_code == 422, (fields, r.text)
        assert isinstance(r.json()["detail"], str) and r.json()["detail"]
    assert "E.164" in trigger(sandbox, number="0415").json()["detail"]
    r = httpx.post(f"{sandbox.base_url}/api/trigger-call/", json={}, headers={"X-API-Key": "nope"})
    assert r.status_code == 401 and TEST_API_KEY not in r.text
    assert httpx.get(f"{sandbox.base_url}/api/call-history").status_code == 401
    assert get(sandbox, "/api/call_details/outbound-1-deadbeef").status_code == 404
    assert get(sandbox, "/api/transcript/outbound-1-deadbeef").status_code == 404
    assert calls(sandbox) == []
    for params in ({"page": 0}, {"page_size": 0}, {"page_size": 201}, {"page": "x"}):
        assert get(sandbox, "/api/call-history", **params).status_code == 422
    health = httpx.get(f"{sandbox.base_url}/api/health").json()
    assert health == {"status": "healthy", "service": "vaani-sandbox"}


def test_lifecycle_reaches_final_with_predictable_details(sandbox_factory: SandboxFactory) -> None:
    sb = sandbox_factory("--speed", "4", "--seed", "2")
    r = trigger(sb, metadata={"sandbox_call_seconds": 2, "sandbox_opt_out": "yes"})
    assert r.status_code == 200
    body = r.json()
    call_id = body["call_id"]
    assert body["status"] == "queued"
    prefix, epoch, hexpart = call_id.split("-")
    assert prefix == "outbound" and abs(int(epoch) - time.time()) < 60 and len(hexpart) == 8
    seen: list[str] = []
    forced = trigger(sb, number="+442071838750", name="Bo", metadata={"sandbox_outcome": "busy"})
    deadline = time.monotonic() + 10
    while not seen or seen[-1] not in FINAL:
        assert time.monotonic() < deadline
        rec = next(
            r for r in get(sb, "/api/call-history").json()["data"] if r["call_id"] == call_id
        )
        if not seen or seen[-1] != rec["call_status"]:
            seen.append(rec["call_status"])
        time.sleep(0.02)
    assert seen == sorted(seen, key=ORDER.index) and seen[-1] == "completed", seen
    assert rec["duration_ms"] == 2000  # simulated seconds, not wall-clock (speed 4)
    created = datetime.fromisoformat(rec["created_at"].replace("Z", "+00:00"))
    ended = datetime.fromisoformat(rec["ended_at"].replace("Z", "+00:00"))
    assert (ended - created).total_seconds() == pytest.approx(0.5, abs=0.01)
    details = get(sb, f"/api/call_details/{call_id}").json()
    # "Anna Maria": 9 letters -> odd -> not interested; preferred date = created + 3 days
    assert details["entity"] == {
        "email": "anna.maria@example.com",
        "interested": False,
        "preferred_date": (created.date() + timedelta(days=3)).isoformat(),
        "opt_out": True,
    }
    assert "Anna Maria" in details["summary"] and details["call_status"] == "completed"
    assert get(sb, f"/api/transcript/{call_id}").json()["transcript"] == details["transcript"]
    truth = {c["call_id"]: c for c in wait_final(sb, 2)}
    assert truth[call_id]["entity"] == details["entity"]
    busy = truth[forced.json()["call_id"]]
    assert (busy["status"], busy["duration_ms"], busy["entity"], busy["summary"]) == (
        "busy",
        0,
        {},
        None,
    )
    assert truth[call_id]["api_key_fingerprint"].startswith("sha256:")
    assert TEST_API_KEY not in str(truth)


def _outcomes(sb: Sandbox, numbers: list[str]) -> list[tuple[str, int]]:
    for i, number in enumerate(numbers):
        assert trigger(sb, number=number, name=f"Person {i}").status_code == 200
    calls = wait_final(sb, len(numbers))
    return [(c["status"], c["duration_ms"]) for c in calls]


def test_seed_makes_outcomes_deterministic(sandbox_factory: SandboxFactory) -> None:
    numbers = [f"+1415555{1000 + i:04d}" for i in range(20)]
    args = ("--call-seconds", "0.05-0.3", "--answer-rate", "0.5", "--seed", "7")
    first = _outcomes(sandbox_factory(*args), numbers)
    again = _outcomes(sandbox_factory(*args), numbers)
    assert first == again
    assert len({status for status, _ in first}) > 1


def _place_many(seed: int, answer_rate: float, n: int) -> list[Call]:
    state = SandboxState(SandboxConfig(seed=seed, answer_rate=answer_rate), clock=FakeClock())
    account = state.account(DEFAULT_API_KEY)
    assert account is not None
    return [
        state.place(
            account, agent_id="a", contact_number=f"+1415{i:07d}", name=f"P{i}", metadata={}
        )
        for i in range(n)
    ]


def test_other_seed_other_outcomes_and_answer_rate_honoured() -> None:
    first = [(c.outcome, c.total_s) for c in _place_many(7, 0.7, 2000)]
    assert first == [(c.outcome, c.total_s) for c in _place_many(7, 0.7, 2000)]
    assert first != [(c.outcome, c.total_s) for c in _place_many(8, 0.7, 2000)]
    statuses = Counter(outcome for outcome, _ in first)
    assert 0.66 <= statuses["completed"] / 2000 <= 0.74, statuses
    assert statuses.keys() == FINAL
    assert all(1.0 <= seconds <= 4.0 for _, seconds in first)  # the default --call-seconds


def test_rate_limit_headers_per_key(sandbox_factory: SandboxFactory) -> None:
    sb = sandbox_factory("--rate-limit", "5/min", "--api-key", "second-key")
    remaining = []
    for _ in range(5):
        r = get(sb, "/api/call-history")
        assert r.status_code == 200
        assert r.headers["X-RateLimit-Limit"] == "5"
        remaining.append(int(r.headers["X-RateLimit-Remaining"]))
    assert remaining == [4, 3, 2, 1, 0]
    r = trigger(sb)
    assert r.status_code == 429
    assert 11 <= int(r.headers["Retry-After"]) <= 12  # one slot every 12 s
    assert r.headers["X-RateLimit-Remaining"] == "0"
    assert 55 <= int(r.headers["X-RateLimit-Reset"]) <= 60
    assert get(sb, "/api/call-history", key="second-key").status_code == 200
    assert httpx.get(f"{sb.base_url}/api/health").status_code == 200  # not limited
    seen = stats(sb)
    assert seen["rate_limited"] == 1 and seen["calls_placed"] == 0
    assert seen["requests"]["call-history"] == 6 and seen["responses_by_status"]["429"] == 1


def test_no_rate_headers(sandbox_factory: SandboxFactory) -> None:
    sb = sandbox_factory("--rate-limit", "1/min", "--no-rate-headers")
    ok, limited = get(sb, "/api/call-history"), get(sb, "/api/call-history")
    assert (ok.status_code, limited.status_code) == (200, 429)
    for r in (ok, limited):
        assert not [h for h in r.headers if h.lower().startswith(("x-ratelimit", "retry-after"))]


def test_refusing_faults_place_nothing(sandbox_factory: SandboxFactory) -> None:
    sb = sandbox_factory("--faults", "429=0.5,5xx=0.5", "--seed", "5")
    codes: Counter[int] = Counter()
    for i in range(12):
        r = trigger(sb, number=f"+1415555{5000 + i}")
        codes[r.status_code] += 1
        if r.status_code == 429:
            assert r.headers["Retry-After"] == "1"
        else:
            assert r.status_code in (500, 503), r.text
    assert codes[429] and (codes[500] or codes[503]), codes
    seen = stats(sb)
    assert seen["faults"]["429"] == codes[429] and seen["faults"]["5xx"] == 12 - codes[429]
    assert seen["calls_placed"] == 0 and calls(sb) == []
    assert seen["rate_limited"] == codes[429]


def test_lost_fault_places_the_call_but_the_answer_never_arrives(
    sandbox_factory: SandboxFactory,
) -> None:
    sb = sandbox_factory("--faults", "lost=1", "--seed", "4")
    seen: Counter[str] = Counter()
    for i in range(8):
        try:
            r = trigger(sb, number=f"+1415555{2000 + i}")
            assert r.status_code == 502
            seen["502"] += 1
        except httpx.RemoteProtocolError:  # connection closed before any response byte
            seen["dropped"] += 1
    assert seen["502"] and seen["dropped"], seen
    placed = calls(sb)
    assert len(placed) == 8
    assert Counter(c["response"] for c in placed) == {
        "lost-502": seen["502"], "lost-drop": seen["dropped"],
    }  # fmt: skip
    assert stats(sb)["faults"]["lost"] == 8


def test_slow_fault_delays_the_answer(sandbox_factory: SandboxFactory) -> None:
    sb = sandbox_factory("--faults", "slow=1", "--slow-seconds", "0.6")
    start = time.monotonic()
    assert trigger(sb).status_code == 200
    assert time.monotonic() - start >= 0.6
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            f"{sb.base_url}/api/trigger-call/",
            json={"agent_id": "a", "contact_number": "+14155550199", "name": "Cy"},
            headers={"X-API-Key": sb.api_key},
            timeout=httpx.Timeout(5, read=0.2),
        )
    time.sleep(0.5)
    assert [c["response"] for c in calls(sb)] == ["slow", "slow"]  # placed all the same
    assert stats(sb)["faults"]["slow"] == 2


def test_background_calls_in_history_not_in_ground_truth(sandbox_factory: SandboxFactory) -> None:
    sb = sandbox_factory("--background-calls", "100", "--seed", "3")
    time.sleep(0.3)
    placed = trigger(sb).json()["call_id"]
    time.sleep(0.1)
    page = get(sb, "/api/call-history", page_size=200).json()
    records = page["data"]
    assert page["pagination"]["total"] >= 10
    others = [r for r in records if r["call_id"] != placed]
    assert {r["call_type"] for r in others} == {"inbound", "outbound"}
    assert all(r["agent_id"].startswith("bg-agent") for r in others)
    assert placed in {r["call_id"] for r in records}
    assert [c["call_id"] for c in calls(sb)] == [placed]
    assert stats(sb)["background_calls"] >= len(others)
    background = get(sb, f"/api/call_details/{others[0]['call_id']}")
    assert background.status_code == 200


def test_history_pages_newest_first_and_stable(sandbox_factory: SandboxFactory) -> None:
    sb = sandbox_factory("--call-seconds", "0.05-0.1", "--seed", "9")
    for i in range(25):
        trigger(sb, number=f"+1415555{3000 + i}", name=f"P{i}")
    wait_final(sb, 25)
    pages = [get(sb, "/api/call-history", page=p, page_size=10).json() for p in (1, 2, 3, 4)]
    ids = [r["call_id"] for p in pages for r in p["data"]]
    assert [len(p["data"]) for p in pages] == [10, 10, 5, 0]
    assert ids == [c["call_id"] for c in reversed(calls(sb))]  # newest first, all, once
    assert pages[0]["pagination"] == {"page": 1, "page_size": 10, "total": 25, "total_pages": 3}
    assert get(sb, "/api/call-history", page=2, page_size=10).json() == pages[1]
    assert client(sb).post("/sandbox/reset").json() == {"status": "reset"}
    assert calls(sb) == [] and get(sb, "/api/call-history").json()["pagination"]["total"] == 0
    assert stats(sb)["calls_placed"] == 0


def _spawn(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "VAANI_SANDBOX_API_KEY": "env-key"}
    cmd = [sys.executable, "-m", "campaigns", "sandbox", "--port", "0", *args]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_port_zero_ready_file_env_key_and_clean_exit(tmp_path: Path, sig: int) -> None:
    ready = tmp_path / "ready"
    proc = _spawn("--ready-file", str(ready))
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("sandbox listening on http://127.0.0.1:"), line
        url = line.rsplit(" ", 1)[1]
        assert ready.read_text().strip() == url
        assert httpx.get(f"{url}/api/call-history", headers={"X-API-Key": "env-key"}).is_success
        proc.send_signal(sig)
        assert proc.wait(timeout=5) == 0
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout:
            proc.stdout.close()
        if proc.stderr:
            proc.stderr.close()


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--rate-limit", "5/hour"),
        ("--faults", "lost=2"),
        ("--call-seconds", "5-1"),
        ("--speed", "0"),
    ],
)
def test_bad_flags_are_usage_errors(
    capsys: pytest.CaptureFixture[str], flag: str, value: str
) -> None:
    assert handle_errors(build_cli(), ["sandbox", flag, value]) == 2
    err = capsys.readouterr().err
    assert flag in err and "Traceback" not in err


def test_port_in_use_is_one_clear_line(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        assert handle_errors(build_cli(), ["sandbox", "--port", port]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"cannot listen on 127.0.0.1:{port}" in err

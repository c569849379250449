"""Events out, end to end: the real CLI against the sandbox, a real HTTP receiver on a
loopback port that fails each event's first delivery, and a SIGKILL of the daemon mid-run.

The receiver is the user's CRM: it checks every signature with ``verify_signature`` (the
function the README tells receivers to copy) and dedupes by ``X-Campaigns-Event-Id``.
"""

from __future__ import annotations

import itertools
import json
import signal
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from campaigns.webhooks import (
    EVENT_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    verify_signature,
)
from storage.engine import make_engine
from storage.models import OutboxEvent
from tests.cli_helpers import (
    ALL_DAY,
    DAEMON_FAST,
    contacts_by_phone,
    create_campaign,
    run_cli,
    start_cli,
    write_contacts_csv,
)
from tests.conftest import Sandbox

pytestmark = pytest.mark.slow

SECRET = "whsec-e2e-4c9a7f21b3d8"


@dataclass
class Delivery:
    event_id: str
    body: bytes
    signature: str | None
    timestamp: str | None
    received_at: float
    status: int


@dataclass
class Receiver:
    """A CRM endpoint: answers 500 to the first delivery of each event, 200 afterwards."""

    url: str
    fail_first: bool = True
    deliveries: list[Delivery] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def accepted(self) -> dict[str, Delivery]:
        """Deduped by event id, as a receiver would: the deliveries answered 200."""
        with self.lock:
            return {d.event_id: d for d in self.deliveries if d.status == 200}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec: Receiver

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            event_id = self.headers.get(EVENT_ID_HEADER, "")
            with rec.lock:
                first = all(d.event_id != event_id for d in rec.deliveries)
                status = 500 if first and rec.fail_first else 200
                rec.deliveries.append(
                    Delivery(
                        event_id=event_id,
                        body=body,
                        signature=self.headers.get(SIGNATURE_HEADER),
                        timestamp=self.headers.get(TIMESTAMP_HEADER),
                        received_at=time.time(),
                        status=status,
                    )
                )
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_: Any) -> None:  # keep the test output clean
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    rec = Receiver(url=f"http://127.0.0.1:{server.server_address[1]}/crm/hook")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield rec
    finally:
        server.shutdown()
        server.server_close()


def _rows(n: int) -> list[dict[str, str]]:
    return [
        {
            "Phone": f"+9198{i:08d}",
            "Customer Name": f"Customer {i}",
            # a third never answer (exhausted after 2 calls); a few of the others answer
            # and say "do not call me again"
            "sandbox_outcome": "no_answer" if i % 3 == 1 else "completed",
            "sandbox_opt_out": "yes" if i % 6 == 0 else "",
        }
        for i in range(n)
    ]


def _wait_for(cond: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _daemon_args(sb: Sandbox) -> tuple[str, ...]:
    return (
        "--api-key",
        sb.api_key,
        "--base-url",
        sb.base_url,
        "--rate-limit",
        "20/s",
        "--webhook-timeout",
        "1",
        *DAEMON_FAST,
    )


def test_every_event_arrives_signed_once_after_dedupe_despite_500s_and_sigkill(
    sandbox_factory: Callable[..., Sandbox], sqlite_url: str, tmp_path: Path, receiver: Receiver
) -> None:
    sb = sandbox_factory("--call-seconds", "0.2-0.6", "--seed", "11")
    n = 24
    csv_path = write_contacts_csv(tmp_path / "c.csv", _rows(n))
    cid = create_campaign(
        sqlite_url,
        csv_path,
        *ALL_DAY,
        "--max-attempts",
        "2",
        "--retry-delay",
        "1s",
        "--webhook-url",
        receiver.url,
        "--webhook-secret",
        SECRET,
    )
    env = {"VAANI_WEBHOOK_SECRET": SECRET}  # the daemon's secret comes from the environment
    log1 = tmp_path / "run1.log"
    proc = start_cli("run", *_daemon_args(sb), db_url=sqlite_url, env=env, log=log1)
    try:
        # kill it mid-run: some events delivered, the campaign not finished
        _wait_for(lambda: len(receiver.accepted()) >= 4, 60, "the first deliveries")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    accepted_at_kill = len(receiver.accepted())
    res = run_cli("run", "--until-done", *_daemon_args(sb), db_url=sqlite_url, env=env, timeout=150)
    assert res.returncode == 0, res.stderr

    engine = make_engine(sqlite_url)
    contacts = contacts_by_phone(engine)
    with engine.connect() as conn:
        rows = list(conn.execute(select(OutboxEvent).order_by(OutboxEvent.id)))
    engine.dispose()
    assert len(contacts) == n
    assert Counter(c.state for c in contacts.values()) == {"done": 16, "exhausted": 8}

    # --until-done left nothing undelivered, and killed mid-run we had not seen it all
    assert all(r.delivered_at is not None for r in rows)
    accepted = receiver.accepted()
    assert accepted_at_kill < len(accepted) == len(rows)

    # every delivery is signed correctly, and retries carry the same id and bytes
    bodies: dict[str, set[bytes]] = defaultdict(set)
    for d in receiver.deliveries:
        assert verify_signature(SECRET, d.body, d.signature, d.timestamp), d
        assert json.loads(d.body)["id"] == d.event_id
        bodies[d.event_id].add(d.body)
    assert all(len(b) == 1 for b in bodies.values())
    tries = Counter(d.event_id for d in receiver.deliveries)
    assert all(k >= 2 for k in tries.values())  # the 500 was retried under the same id

    # after dedupe: exactly one contact.finished per contact, with its final state
    events = [json.loads(d.body) for d in accepted.values()]
    finished = Counter(
        e["data"]["contact"]["phone_e164"] for e in events if e["event"] == "contact.finished"
    )
    assert finished == Counter({p: 1 for p in contacts})
    for e in events:
        if e["event"] == "contact.finished":
            c = contacts[e["data"]["contact"]["phone_e164"]]
            assert (e["data"]["state"], e["data"]["outcome"]) == (c.state, c.outcome)
            assert e["data"]["contact"]["metadata"]["customer_name"] == c.name
    opted = [e for e in events if e["event"] == "contact.opted_out"]
    assert opted and all(e["data"]["contact"]["metadata"]["sandbox_opt_out"] for e in opted)
    assert [e["event"] for e in events].count("campaign.completed") == 1

    # in order per contact: an event is first sent only after the previous one was accepted
    first_sent = {}
    for d in receiver.deliveries:
        first_sent.setdefault(d.event_id, d.received_at)
    by_contact: dict[int | None, list[Any]] = defaultdict(list)
    for r in rows:
        by_contact[r.contact_id].append(r)
    for seq in by_contact.values():
        for earlier, later in itertools.pairwise(seq):
            assert accepted[earlier.event_id].received_at <= first_sent[later.event_id]

    # campaign show tells where the events went; the secret is nowhere
    show = run_cli("campaign", "show", str(cid), db_url=sqlite_url, env={"COLUMNS": "200"})
    assert show.returncode == 0, show.stderr
    assert f"events to {receiver.url}: 0 waiting, {len(rows)} delivered, 0 dead" in show.stdout
    report = tmp_path / "report.csv"
    out = run_cli("report", str(cid), "--out", str(report), db_url=sqlite_url)
    assert out.returncode == 0, out.stderr
    db_file = Path(sqlite_url.removeprefix("sqlite:///"))
    files = [p for p in db_file.parent.iterdir() if p.name.startswith(db_file.name)]
    texts = [p.read_bytes() for p in [*files, report, log1]]
    texts += [(res.stdout + res.stderr + show.stdout).encode()]
    assert all(SECRET.encode() not in t for t in texts)
    assert all(SECRET.encode() not in d.body for d in receiver.deliveries)


def test_two_daemons_on_postgresql_send_each_event_once(
    sandbox_factory: Callable[..., Sandbox], pg_url: str, tmp_path: Path, receiver: Receiver
) -> None:
    """Duplicates are allowed (at least once) but avoided: leased rows, SKIP LOCKED."""
    receiver.fail_first = False
    sb = sandbox_factory("--call-seconds", "0.2-0.5", "--seed", "5")
    rows = [
        {"Phone": f"+9198{i:08d}", "Name": f"N {i}", "sandbox_outcome": "completed"}
        for i in range(30)
    ]
    csv_path = write_contacts_csv(tmp_path / "c.csv", rows)
    hook = ("--webhook-url", receiver.url, "--webhook-secret", SECRET)
    create_campaign(pg_url, csv_path, *ALL_DAY, *hook)
    env = {"VAANI_WEBHOOK_SECRET": SECRET}
    args = ("run", "--until-done", *_daemon_args(sb))
    procs = [start_cli(*args, db_url=pg_url, env=env, log=tmp_path / f"d{i}.log") for i in range(2)]
    for i, p in enumerate(procs):
        assert p.wait(timeout=150) == 0, (tmp_path / f"d{i}.log").read_text()
    sent = Counter(d.event_id for d in receiver.deliveries)
    assert len(sent) == 31  # 30 contact.finished + campaign.completed
    assert set(sent.values()) == {1}


def test_without_the_secret_events_wait_then_go_with_the_config_file_secret(
    sandbox_factory: Callable[..., Sandbox], sqlite_url: str, tmp_path: Path, receiver: Receiver
) -> None:
    receiver.fail_first = False
    sb = sandbox_factory("--call-seconds", "0.2-0.4")
    rows = [
        {"Phone": f"+9198{i:08d}", "Name": f"N {i}", "sandbox_outcome": "completed"}
        for i in range(3)
    ]
    csv_path = write_contacts_csv(tmp_path / "c.csv", rows)
    bad = run_cli(
        "campaign", "create", "x", "--csv", str(csv_path), "--agent-id", "a",
        "--webhook-url", receiver.url, db_url=sqlite_url,
    )  # fmt: skip
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().splitlines()[-1].startswith("Error: --webhook-secret:")
    hook = ("--webhook-url", receiver.url, "--webhook-secret", SECRET)
    cid = create_campaign(sqlite_url, csv_path, *ALL_DAY, *hook)

    first = run_cli("run", "--until-done", *_daemon_args(sb), db_url=sqlite_url, timeout=120)
    assert first.returncode == 0, first.stderr
    held = [line for line in first.stderr.splitlines() if "webhook events waiting" in line]
    assert len(held) == 1 and "VAANI_WEBHOOK_SECRET" in held[0]
    assert receiver.deliveries == []
    show = run_cli("campaign", "show", str(cid), "--json", db_url=sqlite_url)
    out = json.loads(show.stdout)["outbox"]
    assert (out["pending"], out["delivered"], out["dead"]) == (4, 0, 0)  # 3 contacts + completed

    config = tmp_path / "vaani-campaigns.toml"
    config.write_text(f'[run]\nwebhook-secret = "{SECRET}"\n')
    again = run_cli(
        "--config", str(config), "run", "--until-done", *_daemon_args(sb), db_url=sqlite_url
    )
    assert again.returncode == 0, again.stderr
    assert len(receiver.accepted()) == 4
    assert SECRET not in first.stderr + again.stderr

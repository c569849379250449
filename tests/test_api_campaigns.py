"""The console's HTTP API, end to end: the real ``serve`` subprocess, httpx over a socket."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import httpx
import pytest

from tests.cli_helpers import ALL_DAY, create_campaign, run_cli, write_contacts_csv
from tests.conftest import TEST_API_KEY
from tests.console_helpers import serve, wait_for, with_daemon

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data" / "contacts.csv"
FORM = {"name": "API campaign", "agent_id": "agent-api", "region": "IN"}


def _upload(
    client: httpx.Client, path: str, csv_path: Path = SAMPLE, **fields: str
) -> httpx.Response:
    with csv_path.open("rb") as f:
        return client.post(
            path, data={**FORM, **fields}, files={"csv": (csv_path.name, f, "text/csv")}
        )


def test_preview_stores_nothing_then_create_list_show(db_url: str, tmp_path: Path) -> None:
    with serve(db_url, tmp_path) as console, console.client() as api:
        preview = _upload(api, "/api/campaigns/preview", window="00:00-24:00", days="all")
        assert preview.status_code == 200, preview.text
        p = preview.json()
        assert (p["rows"], p["valid"], p["duplicates"], p["invalid"]) == (34, 31, 1, 2)
        assert p["rejected_by_reason"] == {"duplicate": 1, "invalid number": 1, "missing number": 1}
        assert p["callable_now"] == 31 and p["later"] == 0  # the window is open all day
        assert p["sample"][0]["metadata"]["property_name"] == "Prestige Lakeside Habitat"
        assert api.get("/api/campaigns").json() == []  # the preview created nothing

        created = _upload(api, "/api/campaigns")
        assert created.status_code == 201, created.text
        body = created.json()
        assert body["status"] == "running" and body["import"]["imported"] == 31
        assert body["import"]["by_reason"]["duplicate"] == 1
        cid = body["id"]

        listed = api.get("/api/campaigns").json()
        assert [c["id"] for c in listed] == [cid]
        shown = api.get(f"/api/campaigns/{cid}").json()
        for key in ("id", "name", "status", "counts", "outcomes", "pickup_rate", "eta_s"):
            assert key in shown
        assert shown["counts"]["pending"] == 31 and shown["total"] == 34
        assert shown["callable_now"] + shown["later"] == 31
        assert "next_window_at" in shown and "events" in shown
        cli = json.loads(run_cli("campaign", "show", str(cid), "--json", db_url=db_url).stdout)
        assert shown["counts"] == cli["counts"] and shown["outcomes"] == cli["outcomes"]

        assert api.get("/api/campaigns/999").status_code == 404
        bad = _upload(api, "/api/campaigns", window="25:00-26:00")
        assert bad.status_code == 400 and bad.json()["error"].startswith("--window")
        typo = _upload(api, "/api/campaigns", windw="09:00-10:00")
        assert typo.status_code == 400 and "windw" in typo.json()["error"]
        assert len(api.get("/api/campaigns").json()) == 1


def test_lifecycle_and_409_on_an_invalid_transition(sqlite_url: str, tmp_path: Path) -> None:
    cid = create_campaign(sqlite_url, SAMPLE, "--region", "IN")
    with serve(sqlite_url, tmp_path) as console, console.client() as api:
        paused = api.post(f"/api/campaigns/{cid}/pause", json={"reason": "lunch"})
        assert paused.status_code == 200 and paused.json()["status"] == "paused"
        again = api.post(f"/api/campaigns/{cid}/pause")
        assert again.status_code == 409 and "paused" in again.json()["error"]
        assert api.post(f"/api/campaigns/{cid}/resume").json()["status"] == "running"
        stopped = api.post(f"/api/campaigns/{cid}/stop").json()
        assert stopped["status"] == "stopped" and stopped["contacts_cancelled"] == 31
        refused = api.post(f"/api/campaigns/{cid}/resume")
        assert refused.status_code == 409
        assert api.get(f"/api/campaigns/{cid}").json()["status"] == "stopped"  # unchanged
        assert api.post(f"/api/campaigns/{cid}/explode").status_code == 404
        garbled = api.post(f"/api/campaigns/{cid}/cancel", content=b"{not json")
        assert garbled.status_code == 400 and "JSON" in garbled.json()["error"]
        assert api.get(f"/api/campaigns/{cid}").json()["status"] == "stopped"
        assert api.post("/api/campaigns/999/pause").status_code == 404


def test_contacts_keyset_paging_and_filters(sqlite_url: str, tmp_path: Path) -> None:
    rows = [{"name": f"Person {i:03d}", "phone": f"+91984501{i:04d}"} for i in range(57)]
    rows.append({"name": "No Number", "phone": ""})
    cid = create_campaign(sqlite_url, write_contacts_csv(tmp_path / "c.csv", rows))
    with serve(sqlite_url, tmp_path) as console, console.client() as api:
        seen: list[int] = []
        cursor = 0
        pages = 0
        while cursor is not None:
            page = api.get(f"/api/campaigns/{cid}/contacts", params={"cursor": cursor, "limit": 10})
            assert page.status_code == 200
            data = page.json()
            assert len(data["contacts"]) <= 10
            seen += [c["id"] for c in data["contacts"]]
            cursor, pages = data["next_cursor"], pages + 1
        assert len(seen) == 58 and seen == sorted(set(seen)) and pages == 6
        invalid = api.get(f"/api/campaigns/{cid}/contacts", params={"state": "invalid"}).json()
        assert [c["name"] for c in invalid["contacts"]] == ["No Number"]
        found = api.get(f"/api/campaigns/{cid}/contacts", params={"q": "person 01"}).json()
        assert [c["name"] for c in found["contacts"]] == [f"Person 01{i}" for i in range(10)]
        by_number = api.get(f"/api/campaigns/{cid}/contacts", params={"q": "+919845010042"}).json()
        assert [c["name"] for c in by_number["contacts"]] == ["Person 042"]
        literal = api.get(f"/api/campaigns/{cid}/contacts", params={"q": "%"}).json()
        assert literal["contacts"] == []  # a LIKE wildcard is searched for literally
        bad = api.get(f"/api/campaigns/{cid}/contacts", params={"state": "sleeping"})
        assert bad.status_code == 400 and "sleeping" in bad.json()["error"]


def test_report_streams_the_same_bytes_as_the_cli(sqlite_url: str, tmp_path: Path) -> None:
    cid = create_campaign(sqlite_url, SAMPLE, "--region", "IN")
    for args, query in (
        ((), {}),
        (("--attempts", "--no-bom"), {"attempts": "1", "no_bom": "1"}),
        (("--transcripts",), {"transcripts": "1"}),
    ):
        out = tmp_path / f"cli-{len(args)}.csv"
        res = run_cli("report", str(cid), "--out", str(out), *args, db_url=sqlite_url)
        assert res.returncode == 0, res.stderr
        with serve(sqlite_url, tmp_path) as console, console.client() as api:
            got = api.get(f"/api/campaigns/{cid}/report.csv", params=query)
            assert got.status_code == 200 and got.headers["content-type"].startswith("text/csv")
            assert "attachment" in got.headers["content-disposition"]
            assert got.content == out.read_bytes()
    with serve(sqlite_url, tmp_path) as console, console.client() as api:
        only = api.get(
            f"/api/campaigns/{cid}/report.csv",
            params={"state": "invalid", "columns": "customer_name,reason"},
        )
        assert list(csv.reader(io.StringIO(only.content.decode("utf-8-sig")))) == [
            ["customer_name", "reason"],
            ["Ritu Agarwal", "duplicate: same number as row 2"],
            ["Unknown Lead", "invalid phone number: not a valid IN (+91) number"],
            ["Walk-in Visitor", "missing phone number"],
        ]
        bad = api.get(f"/api/campaigns/{cid}/report.csv", params={"state": "nope"})
        assert bad.status_code == 400 and "nope" in bad.json()["error"]
        assert api.get("/api/campaigns/999/report.csv").status_code == 404


def test_dnc_add_list_remove(db_url: str, tmp_path: Path) -> None:
    cid = create_campaign(db_url, SAMPLE, "--region", "IN")
    with serve(db_url, tmp_path) as console, console.client() as api:
        added = api.post("/api/dnc", json={"numbers": ["+91 98450 12345"], "reason": "asked"})
        assert added.status_code == 201 and added.json() == {"added": 1, "suppressed_contacts": 1}
        listed = api.get("/api/dnc").json()
        assert [(e["phone_e164"], e["reason"]) for e in listed] == [("+919845012345", "asked")]
        shown = api.get(f"/api/campaigns/{cid}").json()
        assert shown["counts"]["suppressed"] == 1
        bad = api.post("/api/dnc", json={"numbers": ["+919820011223", "not a number"]})
        assert bad.status_code == 400 and "not a number" in bad.json()["error"]
        assert len(api.get("/api/dnc").json()) == 1  # all or nothing
        gone = api.request(
            "DELETE", "/api/dnc", json={"numbers": ["+919845012345", "+919820011223"]}
        )
        assert gone.status_code == 200 and gone.json() == {"removed": 1, "missing": 1}
        assert api.get("/api/dnc").json() == []
        assert api.post("/api/dnc", content=b"nope").status_code == 400


def test_openapi_lists_every_route(sqlite_url: str, tmp_path: Path) -> None:
    with serve(sqlite_url, tmp_path) as console, console.client() as api:
        doc = api.get("/api/openapi.json").json()
        assert doc["openapi"].startswith("3.")
        for path in (
            "/api/campaigns",
            "/api/campaigns/preview",
            "/api/campaigns/{campaign_id}",
            "/api/campaigns/{campaign_id}/pause",
            "/api/campaigns/{campaign_id}/contacts",
            "/api/campaigns/{campaign_id}/report.csv",
            "/api/dnc",
            "/api/events",
        ):
            assert path in doc["paths"], path
        page = api.get("/")
        assert page.status_code == 200 and "<title>Vaani campaigns</title>" in page.text
        assert api.get("/static/app.js").status_code == 200


@pytest.mark.slow
def test_with_daemon_calls_everyone_timeline_and_events(
    sqlite_url: str, tmp_path: Path, sandbox
) -> None:  # type: ignore[no-untyped-def]
    cid = create_campaign(sqlite_url, SAMPLE, "--region", "IN", *ALL_DAY)
    args = with_daemon(sandbox.base_url, "50/s")
    with serve(sqlite_url, tmp_path, *args) as console, console.client() as api:
        with api.stream(
            "GET", "/api/events", headers={"Authorization": ""}, params={"token": console.token}
        ) as events:
            assert events.status_code == 200
            assert events.headers["content-type"].startswith("text/event-stream")
            lines = events.iter_lines()
            first = next(line for line in lines if line.startswith("data: "))
            assert json.loads(first[6:])[0]["id"] == cid

        def finished() -> bool:
            c = api.get(f"/api/campaigns/{cid}").json()
            return (
                c["waiting"] == 0
                and c["counts"]["awaiting_outcome"] == 0
                and c["finished"] == c["total"]
            )

        wait_for(finished, timeout=90, what="every contact finished")
        shown = api.get(f"/api/campaigns/{cid}").json()
        points = api.get(f"/api/campaigns/{cid}/timeline").json()["points"]
        assert sum(p["placed"] for p in points) == sum(shown["call_outcomes"].values()) > 0
        assert sum(p["outcomes"].get("answered", 0) for p in points) == shown["answered_calls"]
    assert TEST_API_KEY not in console.log() and console.token not in console.log()


def test_a_campaign_do_not_call_file_suppresses_in_preview_and_create(
    sqlite_url: str, tmp_path: Path
) -> None:
    dnc = b"+91 98450 12345\n09847012345\n"
    with serve(sqlite_url, tmp_path) as console, console.client() as api:
        for path in ("/api/campaigns/preview", "/api/campaigns"):
            res = api.post(
                path,
                data=FORM,
                files={
                    "csv": ("c.csv", SAMPLE.read_bytes(), "text/csv"),
                    "dnc": ("dnc.txt", dnc, "text/plain"),
                },
            )
            assert res.status_code in (200, 201), res.text
            body = res.json()
            assert (body if path.endswith("preview") else body["import"])["suppressed"] == 2
        cid = res.json()["id"]
        assert api.get(f"/api/campaigns/{cid}").json()["counts"]["suppressed"] == 2
        assert api.get("/api/dnc").json() == []  # the campaign's list, not the global one


def test_abandoned_report_downloads_free_the_server(sqlite_url: str, tmp_path: Path) -> None:
    rows = [
        {"name": f"Person {i}", "phone": f"+9198{i:08d}", "notes": "x" * 80} for i in range(30_000)
    ]
    cid = create_campaign(sqlite_url, write_contacts_csv(tmp_path / "big.csv", rows))
    with serve(sqlite_url, tmp_path) as console, console.client() as api:
        for _ in range(45):  # more than the server's worker threads
            with api.stream("GET", f"/api/campaigns/{cid}/report.csv") as res:
                assert res.status_code == 200
                next(res.iter_raw(1024))
        full = api.get(f"/api/campaigns/{cid}/report.csv", params={"no_bom": "1"})
        assert full.status_code == 200 and full.content.count(b"\n") == 30_001

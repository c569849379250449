"""The console's security rules, against the real ``serve``: the token on every route but
the health check (401 and nothing changed), the headers, the upload cap, loopback without a
token, no secret in the log."""

from __future__ import annotations

import os
from pathlib import Path

import httpx

from tests.cli_helpers import create_campaign, run_cli
from tests.console_helpers import TOKEN, serve, wait_for

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data" / "contacts.csv"
FORM = {"name": "x", "agent_id": "a", "region": "IN"}
ROUTES = [
    ("GET", "/api/campaigns"),
    ("POST", "/api/campaigns"),
    ("POST", "/api/campaigns/preview"),
    ("GET", "/api/campaigns/{id}"),
    *[
        ("POST", f"/api/campaigns/{{id}}/{a}")
        for a in ("start", "pause", "resume", "stop", "cancel")
    ],
    ("GET", "/api/campaigns/{id}/contacts"),
    ("GET", "/api/campaigns/{id}/timeline"),
    ("GET", "/api/campaigns/{id}/report.csv"),
    ("GET", "/api/dnc"),
    ("POST", "/api/dnc"),
    ("DELETE", "/api/dnc"),
    ("GET", "/api/events"),
    ("GET", "/api/openapi.json"),
]


def test_every_route_needs_the_token_and_a_refusal_changes_nothing(
    sqlite_url: str, tmp_path: Path
) -> None:
    cid = create_campaign(sqlite_url, SAMPLE, "--region", "IN")
    with serve(sqlite_url, tmp_path) as console:
        before = httpx.get(
            f"{console.base_url}/api/campaigns/{cid}", headers={"Authorization": f"Bearer {TOKEN}"}
        ).json()
        for headers in (
            {},
            {"Authorization": "Bearer wrong-token"},
            {"Authorization": f"Basic {TOKEN}"},
            {"Authorization": f"Bearer {TOKEN}x"},
        ):
            for method, path in ROUTES:
                url = console.base_url + path.format(id=cid)
                kwargs: dict = {"headers": headers, "timeout": 10}
                if (
                    method == "POST"
                    and "campaigns" in path
                    and path.endswith(("campaigns", "preview"))
                ):
                    kwargs["files"] = {"csv": ("c.csv", SAMPLE.read_bytes(), "text/csv")}
                    kwargs["data"] = FORM
                elif path == "/api/dnc" and method != "GET":
                    kwargs["json"] = {"numbers": ["+919845012345"]}
                res = httpx.request(method, url, **kwargs)
                assert res.status_code == 401, (method, path, headers, res.status_code)
                assert res.headers["www-authenticate"] == "Bearer"
                assert TOKEN not in res.text
        # ?token= is for the events stream alone
        assert (
            httpx.get(f"{console.base_url}/api/campaigns", params={"token": TOKEN}).status_code
            == 401
        )
        assert httpx.get(f"{console.base_url}/api/health").status_code == 200
        with console.client() as api:
            after = api.get(f"/api/campaigns/{cid}").json()
            assert [c["id"] for c in api.get("/api/campaigns").json()] == [cid]
            assert api.get("/api/dnc").json() == []
        assert (
            after["status"] == before["status"] == "running" and after["counts"] == before["counts"]
        )
    assert TOKEN not in console.log()


def test_headers_csp_and_nosniff_on_every_answer(sqlite_url: str, tmp_path: Path) -> None:
    with serve(sqlite_url, tmp_path) as console, console.client() as api:
        for path in ("/", "/static/app.js", "/api/health", "/api/campaigns", "/api/campaigns/9"):
            res = api.get(path)
            assert res.headers["x-content-type-options"] == "nosniff", path
            csp = res.headers["content-security-policy"]
            assert "script-src 'self'" in csp and "unsafe-inline" not in csp, path
        assert (
            httpx.get(f"{console.base_url}/api/campaigns").headers["x-content-type-options"]
            == "nosniff"
        )


def _big_csv(path: Path, mb: float) -> Path:
    line = "Some Person,+919845012345,a long note to make the file larger than the cap\n"
    with path.open("w") as f:
        f.write("name,phone,notes\n")
        f.write(line * int(mb * 1024 * 1024 / len(line) + 1))
    return path


def test_upload_over_the_cap_is_413_and_stores_nothing(sqlite_url: str, tmp_path: Path) -> None:
    big = _big_csv(tmp_path / "big.csv", 1.5)
    with serve(sqlite_url, tmp_path, "--max-upload-mb", "1") as console, console.client() as api:
        for path in ("/api/campaigns", "/api/campaigns/preview"):
            with big.open("rb") as f:
                res = api.post(path, data=FORM, files={"csv": ("big.csv", f, "text/csv")})
            assert res.status_code == 413 and "1 MB" in res.json()["error"], res.text

        def chunks():  # no Content-Length: the cap is counted as the bytes arrive
            boundary = b"--XyZ"
            yield boundary + b'\r\nContent-Disposition: form-data; name="name"\r\n\r\nx\r\n'
            yield boundary + b'\r\nContent-Disposition: form-data; name="agent_id"\r\n\r\na\r\n'
            yield (
                boundary
                + b'\r\nContent-Disposition: form-data; name="csv"; filename="b.csv"\r\n\r\n'
            )
            with big.open("rb") as f:
                while block := f.read(64 * 1024):
                    yield block
            yield b"\r\n" + boundary + b"--\r\n"

        res = api.post(
            "/api/campaigns",
            content=chunks(),
            headers={"content-type": "multipart/form-data; boundary=XyZ"},
        )
        assert res.status_code == 413, res.text
        assert api.get("/api/campaigns").json() == []
        small = api.post(
            "/api/campaigns", data=FORM, files={"csv": ("c.csv", SAMPLE.read_bytes(), "text/csv")}
        )
        assert small.status_code == 201  # under the cap it works
        no_file = api.post(
            "/api/campaigns", data=FORM, files={"other": ("c.csv", b"x", "text/csv")}
        )
        assert no_file.status_code == 400 and "csv" in no_file.json()["error"]
    leftovers = [p for p in Path(os.environ.get("TMPDIR", "/tmp")).glob("vaani-upload-*")]
    assert not [p for p in leftovers if p.stat().st_mtime > big.stat().st_mtime]


def test_without_a_token_loopback_only(sqlite_url: str, tmp_path: Path) -> None:
    res = run_cli("serve", "--host", "0.0.0.0", "--port", "0", db_url=sqlite_url, timeout=30)
    assert res.returncode == 1
    assert res.stderr.strip().splitlines() == [
        "Error: --host 0.0.0.0 is not loopback: pass --token or set VAANI_CONSOLE_TOKEN to serve beyond this machine"
    ]
    with serve(sqlite_url, tmp_path, token=None) as console:
        # the banner is printed once the server listens: health may answer a moment before
        banner = wait_for(lambda: "#token=" in console.log() and console.log(), 10, "banner")
        assert "loopback only" in banner and "#token=" in banner
        made_up = banner.split("#token=")[1].split()[0]
        assert httpx.get(f"{console.base_url}/api/campaigns").status_code == 401
        ok = httpx.get(
            f"{console.base_url}/api/campaigns", headers={"Authorization": f"Bearer {made_up}"}
        )
        assert ok.status_code == 200


def test_a_port_in_use_is_one_line(sqlite_url: str, tmp_path: Path) -> None:
    host = "127.0.0.1"
    with serve(sqlite_url, tmp_path) as console:
        port = console.base_url.rsplit(":", 1)[1]
        res = run_cli(
            "serve", "--host", host, "--port", port, "--token", "t", db_url=sqlite_url, timeout=30
        )
    assert res.returncode == 1
    assert (
        res.stderr.startswith(f"Error: cannot listen on {host}:{port}:")
        and len(res.stderr.splitlines()) == 1
    )


def test_with_daemon_needs_an_api_key_in_one_line(sqlite_url: str) -> None:
    res = run_cli(
        "serve", "--with-daemon", "--port", "0", "--token", "t", db_url=sqlite_url, timeout=30
    )
    assert res.returncode == 1
    line = res.stderr.strip()
    assert line.startswith("Error: no API key: pass --api-key or set VAANI_API_KEY")
    assert len(line.splitlines()) == 1

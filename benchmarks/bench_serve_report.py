"""Benchmark: stream a large campaign's report from ``vaani-campaigns serve`` over HTTP
(target: the server's peak RSS < 150 MB for 1M contacts).

Builds the campaign with bench_report's bulk insert (Core ``executemany``), starts ``serve``
as a subprocess on a free loopback port, downloads ``/api/campaigns/{id}/report.csv`` with
httpx in streaming mode (the bytes are counted and dropped), and reads the server's peak RSS
from ``/proc/PID/status`` (``VmHWM``: the high-water mark, not a sample). Worker processes a
large export forks are sampled every 50 ms (their peak is shown separately). The bytes are
checked against ``vaani-campaigns report`` when ``--check`` is given.

    .venv/bin/python benchmarks/bench_serve_report.py                    # 1M contacts
    .venv/bin/python benchmarks/bench_serve_report.py --sizes 200000 --workdir /tmp/bsr
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_report import build, reuse  # noqa: E402

from storage.engine import make_engine  # noqa: E402
from storage.migrate import upgrade  # noqa: E402

TOKEN = "bench-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def vm_hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


def start_serve(url: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    cmd = [
        sys.executable,
        "-m",
        "campaigns",
        "--db",
        url,
        "serve",
        "--port",
        str(port),
        "--token",
        TOKEN,
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"serve did not start: {log.read_text()}")


def sample_children(pid: int, done: threading.Event, peak: list[float]) -> None:
    """The largest RSS of ``pid``'s children (a parallel export's workers) until ``done``."""
    server = psutil.Process(pid)
    while not done.is_set():
        for kid in server.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                peak[0] = max(peak[0], kid.memory_info().rss / 2**20)
        time.sleep(0.05)


def stream(port: int, cid: int) -> tuple[int, int, float, str]:
    """Bytes, lines, seconds and sha256 of the streamed report."""
    digest = hashlib.sha256()
    size = lines = 0
    t = time.perf_counter()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with (
        httpx.Client(timeout=600) as client,
        client.stream(
            "GET", f"http://127.0.0.1:{port}/api/campaigns/{cid}/report.csv", headers=headers
        ) as res,
    ):
        res.raise_for_status()
        for chunk in res.iter_bytes(1 << 16):
            size += len(chunk)
            lines += chunk.count(b"\n")
            digest.update(chunk)
    return size, lines, time.perf_counter() - t, digest.hexdigest()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--sizes", default="1000000")
    p.add_argument("--attempt-share", type=float, default=0.3)
    p.add_argument("--workdir", help="keep the databases here and reuse them (default: temp)")
    p.add_argument("--check", action="store_true", help="compare with `vaani-campaigns report`")
    args = p.parse_args()
    if args.workdir:
        Path(args.workdir).mkdir(parents=True, exist_ok=True)
        run(args, Path(args.workdir))
        return
    with tempfile.TemporaryDirectory(prefix="bench_serve_report_") as tmp:
        run(args, Path(tmp))


def run(args: argparse.Namespace, work: Path) -> None:
    print(f"{'contacts':>10} {'rows':>10} {'build s':>8} {'stream s':>9} {'rows/s':>9} {'CSV MB':>7} "
          f"{'server RSS MB idle/peak':>23} {'workers peak MB':>15} {'same bytes':>10}")  # fmt: skip
    for n in (int(s) for s in args.sizes.split(",")):
        url = f"sqlite:///{work / f'report_{n}.db'}"
        engine = make_engine(url)
        upgrade(engine)
        t = time.perf_counter()
        cid = reuse(engine, n) or build(engine, n, args.attempt_share)
        build_s = time.perf_counter() - t
        engine.dispose()
        port = free_port()
        proc = start_serve(url, port, work / "serve.log")
        try:
            idle = vm_hwm_mb(proc.pid)
            kids_peak = [0.0]
            done = threading.Event()
            sampler = threading.Thread(
                target=sample_children, args=(proc.pid, done, kids_peak), daemon=True
            )
            sampler.start()
            size, lines, seconds, sha = stream(port, cid)
            done.set()
            sampler.join()
            peak = vm_hwm_mb(proc.pid)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        same = "-"
        if args.check:
            out = work / f"cli_{n}.csv"
            cmd = [
                sys.executable,
                "-m",
                "campaigns",
                "--db",
                url,
                "report",
                str(cid),
                "--out",
                str(out),
            ]
            subprocess.run(cmd, check=True, capture_output=True, cwd=ROOT)
            same = "yes" if hashlib.sha256(out.read_bytes()).hexdigest() == sha else "NO"
            out.unlink()
        rows = lines - 1  # the header; a cell with a newline is quoted, so count rows another way
        print(f"{n:>10} {n:>10} {build_s:>8.1f} {seconds:>9.2f} {n / seconds:>9,.0f} {size / 1e6:>7.0f} "
              f"{idle:>15.0f}/{peak:<7.0f} {kids_peak[0]:>15.0f} {same:>10}   ({rows} lines)")  # fmt: skip


if __name__ == "__main__":
    main()

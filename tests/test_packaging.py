"""What a plain ``pip install .`` ships: the wheel holds the demo's data and the migrations.

The demo (``vaani-campaigns demo``) reads ``sample_data`` through ``importlib.resources`` and
every start runs the Alembic migrations, so both must be inside the wheel, not only in the
source tree (an editable install would hide their absence).
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_wheel_ships_sample_data_and_the_migrations(tmp_path: Path) -> None:
    had_build_dir = (ROOT / "build").exists()
    try:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "--no-deps",
                "-q",
                "-w",
                str(tmp_path),
                str(ROOT),
            ],
            check=True,
            capture_output=True,
            timeout=300,
        )
    finally:  # setuptools builds in the source tree: leave it as it was
        if not had_build_dir:
            shutil.rmtree(ROOT / "build", ignore_errors=True)
    (wheel,) = tmp_path.glob("vaani_campaigns-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for sample in ("contacts.csv", "dnc.txt", "README.md", "__init__.py"):
        assert f"sample_data/{sample}" in names
    migrations = ROOT / "storage" / "migrations"
    expected = {"env.py", "script.py.mako"} | {
        f"versions/{p.name}" for p in (migrations / "versions").glob("*.py")
    }
    assert len(expected) >= 3
    for name in expected:
        assert f"storage/migrations/{name}" in names, name
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    text = zipfile.ZipFile(wheel).read(metadata).decode()
    requires = [line for line in text.splitlines() if line.startswith("Requires-Dist:")]
    runtime = [r for r in requires if "extra ==" not in r]
    assert "Requires-Dist: uvicorn>=0.29" in runtime and any("starlette" in r for r in runtime)
    assert not any("charset" in r or "uvicorn[" in r for r in runtime)
    assert 'Requires-Dist: uvicorn[standard]>=0.29; extra == "sandbox"' in requires


def test_the_demo_finds_its_samples_as_package_data() -> None:
    from campaigns.cli import demo_cmd

    with contextlib.ExitStack() as stack:
        found = demo_cmd.sample_file(stack, "contacts.csv")
        assert found.read_bytes() == (ROOT / "sample_data" / "contacts.csv").read_bytes()
        dnc = demo_cmd.sample_file(stack, "dnc.txt")
        assert dnc.read_bytes() == (ROOT / "sample_data" / "dnc.txt").read_bytes()

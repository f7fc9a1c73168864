"""`pip install .` must carry every file the app reads at run time (templates, catalogs, curriculum...)."""
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("iop", "kiosk", "facilitator", "coordinator", "curriculum")


def test_the_wheel_holds_every_tracked_data_file(tmp_path):
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True)
    files = [line for line in tracked.stdout.splitlines() if line]
    assert files, "git ls-files found nothing (run the tests from a checkout)"
    # Build from a clean copy of the tracked files, as a fresh clone would (no stale egg-info).
    source = tmp_path / "source"
    for name in files:
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"),
                            str(source)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-2000:]
    wheel = next((tmp_path / "dist").glob("iop_kiosk-*.whl"))
    in_wheel = set(zipfile.ZipFile(wheel).namelist())
    data_files = {name for name in files if name.startswith(tuple(p + "/" for p in PACKAGES))
                  and not name.endswith(".py")}
    assert sorted(data_files - in_wheel) == []

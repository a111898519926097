"""Pack Hearth's source into a reproducible .tar.gz (run on the Ansible machine).

Same source, same bytes: fixed timestamps, owners and modes, sorted names,
no __pycache__. So Ansible's copy of the archive changes (and Hearth is
reinstalled on the server) only when the code changed.

    python pack_source.py REPO_ROOT OUTPUT.tar.gz
"""

from __future__ import annotations

import gzip
import io
import sys
import tarfile
from pathlib import Path

# What `pip install` needs to build Hearth (see pyproject.toml).
TOP_FILES = ("pyproject.toml", "README.md", "LICENSE", "COPYING")
PACKAGES = ("bots", "bridge", "provisioning")
SKIP_DIRS = {"__pycache__"}
SKIP_SUFFIXES = {".pyc", ".pyo"}


def files(root: Path) -> list[Path]:
    found = [root / name for name in TOP_FILES if (root / name).is_file()]
    for package in PACKAGES:
        for path in (root / package).rglob("*"):
            rel = path.relative_to(root)
            if SKIP_DIRS & set(rel.parts) or path.suffix in SKIP_SUFFIXES:
                continue
            if path.is_file():
                found.append(path)
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def pack(root: Path) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in files(root):
            info = tarfile.TarInfo(f"hearth/{path.relative_to(root).as_posix()}")
            data = path.read_bytes()
            info.size = len(data)
            info.mtime = 315532800  # 1980-01-01, the oldest time a wheel accepts
            info.mode = 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0, filename="") as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def main() -> int:
    root, output = Path(sys.argv[1]).resolve(), Path(sys.argv[2])
    if not (root / "pyproject.toml").is_file():
        print(f"pack_source: {root} is not Hearth's repository", file=sys.stderr)
        return 2
    output.write_bytes(pack(root))
    return 0


if __name__ == "__main__":
    sys.exit(main())

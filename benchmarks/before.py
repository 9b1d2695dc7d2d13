"""The commit a benchmark compares against: ``with checkout("REF") as folder`` is a temporary git
worktree of ``REF``, removed after (``None`` gives ``None``: no comparison)."""

import contextlib
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def checkout(ref: str | None):
    if ref is None:
        yield None
        return
    folder = tempfile.mkdtemp(prefix="memcorr_before_")
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", folder, ref], check=True, capture_output=True
    )
    try:
        yield folder
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", folder], capture_output=True)

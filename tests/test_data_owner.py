"""A command root runs against the service's data folder leaves no root-owned file there: it runs as the
folder's owner (anchor/cli/identity.py), as the daemon's user would find them."""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Project, no_traceback, script_text

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="only root changes who a command runs as")

APPROVER = '\n[approvers.zhang]\nrole = "主任医师"\n'


@pytest.fixture
def site() -> Iterator[Project]:
    """A site another user may traverse: pytest's own tmp_path sits under a 0700 root-only folder."""
    root = Path(tempfile.mkdtemp(prefix="anchor-owner-"))
    root.chmod(0o755)
    try:
        project = Project(root)
        project.scripts.mkdir()
        project.write_config(APPROVER)
        project.script("notice.md", script_text("今天下午门诊照常开放。", title="门诊通知"))
        yield project
    finally:
        shutil.rmtree(root)


def _owned_by(folder: Path) -> dict[str, int]:
    return {str(path.relative_to(folder)): path.lstat().st_uid for path in folder.rglob("*")}


def test_a_command_run_as_root_writes_the_data_folder_as_its_owner(site: Project) -> None:
    owner = pwd.getpwnam("nobody")
    data = site.root / "data"
    data.mkdir()
    os.chown(data, owner.pw_uid, owner.pw_gid)
    approved = site.run("approve", "notice.md", "--by", "zhang")
    no_traceback(approved)
    assert approved.returncode == 0, approved.stderr
    assert f"running as nobody, the owner of {data}" in approved.stderr
    history = site.run("history")
    assert history.returncode == 0, history.stderr
    written = _owned_by(data)
    assert "anchor.db" in written, written  # the as-run log, created by the command
    assert all(uid == owner.pw_uid for uid in written.values()), written


def test_a_data_folder_of_a_uid_without_account_is_refused_in_one_line(site: Project) -> None:
    taken = {entry.pw_uid for entry in pwd.getpwall()}
    orphan = next(uid for uid in range(61000, 65000) if uid not in taken)
    data = site.root / "data"
    data.mkdir()
    os.chown(data, orphan, orphan)
    refused = site.run("history")
    no_traceback(refused)
    assert refused.returncode == 2, refused.stderr
    assert f"uid {orphan}, which has no account" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert _owned_by(data) == {}  # nothing written as root

"""A port of the daemon already in use (a second `anchor run`, or `make run` beside the service): one line
naming the port, the setting that moves it and who holds it; exit 2, no traceback."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from anchor.ports import listener
from tests.conftest import Project, no_traceback, script_text


@pytest.mark.parametrize("setting", ["metrics_port", "http_port"])
def test_a_taken_port_ends_anchor_run_with_one_line(project: Project, setting: str) -> None:
    project.script("a.md", script_text("你好。"))
    (project.root / "schedules").mkdir()
    with socket.socket() as holder:  # this test's process holds the port, so it is the one to be named
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        ports = {"metrics_port": 0, "http_port": 0, setting: port}  # 0: the other one is free, chosen by the system
        project.write_config(extra="[daemon]\n" + "".join(f"{key} = {value}\n" for key, value in ports.items()))
        result = project.run("run", timeout=120, env={"COLUMNS": "1000"})  # wide: report() folds nothing
    no_traceback(result)
    assert result.returncode == 2, result.stderr
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    line, setting_line = lines[0], project.config.read_text().splitlines().index(f"{setting} = {port}") + 1
    assert line.startswith(f"error: {project.config}:{setting_line}: [daemon.{setting}] "), line
    assert f"port {port} on 127.0.0.1 is already in use by pid {os.getpid()} (" in line, line
    assert f"set [daemon] {setting} to a free port in {project.config.resolve()}" in line, line


def test_a_listener_this_user_cannot_see_is_named_by_its_user(tmp_path: Path) -> None:
    """Another user's daemon: /proc/net/tcp shows its socket and uid, but not its descriptors."""
    (tmp_path / "net").mkdir()
    header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
    listening = "   0: 0100007F:24E8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1\n"
    (tmp_path / "net" / "tcp").write_text(header + listening, encoding="ascii")
    assert listener(0x24E8, tmp_path) == "a program of user root"
    assert listener(9999, tmp_path) == "another program"

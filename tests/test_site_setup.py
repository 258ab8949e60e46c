"""What an operator's set-up does to the checkout and the machine: where the README's openssl commands put
the private key, what .gitignore keeps out of the repository, and what the Makefile installs for `make run`
and for `make test`."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

from tests.conftest import REPO


def _shell_lines(text: str) -> list[str]:
    """The lines of the README's shell blocks, without comments, indented blocks included."""
    lines = []
    for block in re.findall(r"```(?:sh|bash|shell)\n(.*?)```", text, re.DOTALL):
        for line in block.splitlines():
            words = shlex.split(line, comments=True)
            if words:
                lines.append(shlex.join(words))
    return lines


def _openssl_outputs(line: str) -> list[str]:
    """The files an openssl command line writes: `-out FILE` and `> FILE`, also inside `sh -c '…'`."""
    words = shlex.split(line)
    inner = [shlex.split(w) for w in words if w.count(" ") and "openssl" in w]  # sh -c 'umask 077 && openssl …'
    outputs = []
    for argv in [words, *inner]:
        for i, word in enumerate(argv[:-1]):
            if word in ("-out", ">"):
                outputs.append(argv[i + 1])
    return outputs


def test_no_readme_command_writes_a_private_key_into_the_checkout() -> None:
    lines = [line for line in _shell_lines((REPO / "README.md").read_text(encoding="utf-8")) if "openssl" in line]
    making_keys = [line for line in lines if "genpkey" in line]
    assert making_keys, lines
    for line in lines:
        for output in _openssl_outputs(line):
            private = "genpkey" in line or output.endswith((".key", ".pem"))
            if private:
                # A relative path lands in the checkout the README's commands are run from.
                assert output.startswith("/"), f"writes a private key into the checkout: {line}"
                assert not Path(output).is_relative_to(REPO), line
            else:
                assert output.endswith(".pub"), f"only the public key may land in the checkout: {line}"
    for line in making_keys:
        assert "umask 077" in line, f"a private key made readable by others: {line}"


def test_git_ignores_private_keys() -> None:
    for name in ("institution.key", "audit-signing-key.pem", "keys/institution.key"):
        ignored = subprocess.run(["git", "check-ignore", "--no-index", "-q", name], cwd=REPO, timeout=30)
        assert ignored.returncode == 0, f"git would add {name}"


def _packages_installed_by(target: str) -> list[str]:
    """The Debian packages `make TARGET` checks for and installs, read from make's own dry run."""
    dry_run = subprocess.run(["make", "-n", "--no-print-directory", target], cwd=REPO, capture_output=True,
                             text=True, timeout=60)
    assert dry_run.returncode == 0, dry_run.stderr
    found = re.search(r"for p in ([^;]*); do dpkg -s", dry_run.stdout)
    assert found, dry_run.stdout
    return found[1].split()


def test_make_run_installs_what_running_needs_and_make_test_adds_the_test_programs() -> None:
    run, test = _packages_installed_by("run"), _packages_installed_by("test")
    assert {"ffmpeg", "espeak-ng"} <= set(run)
    assert set(run) < set(test)
    for test_only in ("obs-studio", "postgresql", "prometheus", "xvfb"):
        assert test_only in test and not any(p.startswith(test_only) for p in run), (test_only, run)
    # Unversioned names (postgresql, not postgresql-15) hold on the next Debian release too.
    versioned = [p for p in test if re.search(r"-\d+(\.\d+)*$", p)]
    assert not versioned, versioned


def test_the_postgresql_tests_find_the_newest_server_installed(tmp_path: Path) -> None:
    from tests.conftest import newest_postgres_bin

    for major in ("9.6", "13", "17", "common"):
        (tmp_path / major / "bin").mkdir(parents=True)
    for major in ("13", "17"):
        (tmp_path / major / "bin" / "initdb").touch()
    (tmp_path / "common" / "bin" / "initdb").touch()
    assert newest_postgres_bin(tmp_path) == tmp_path / "17" / "bin"  # by number: 17 is newer than 9.6 and 13
    installed = newest_postgres_bin()
    assert (installed / "initdb").exists(), f"no PostgreSQL server under {installed.parent.parent}"

"""Who a command runs as: a command root runs against a data folder another user owns runs as that owner.

The daemon runs as its own user (systemd/anchor.service: User=anchor) and writes under data_dir. A command an
admin runs there as root (`anchor approve`, `render`, `history` creating or migrating data/anchor.db and its
-wal and -shm files, caches, evidence…) would leave root-owned files the daemon then cannot write: an outage
at its next airing. So when root runs anchor and data_dir exists, owned by another user, the command becomes
that user, as `sudo -u anchor anchor …` would, before it opens any file but anchor.toml, and says so.

Why become the owner rather than refuse: it only ever lowers privileges, for good (setuid as root sets the
real, effective and saved ids, so nothing in the process can return to root), and it ends in exactly the
state the README asks operators for (`sudo -u anchor …`, the owner's groups included); refusing would only
make the admin type the same command again. The one case refused is a folder owned by a uid with no account:
there is no user, and no groups, to become.
"""

from __future__ import annotations

import os
import pwd
import stat
from pathlib import Path

from anchor.cli.common import BadInput, err, escape


def become_data_owner(config: Path) -> None:
    """Run as the owner of the data_dir that `config` names, when this process runs as root and someone else
    owns that folder; otherwise nothing changes."""
    if os.geteuid() != 0:
        return
    from anchor.config import load_settings_leniently

    # Leniently: anchor.toml's other errors are the command's to report, with the files it writes owned right.
    data_dir = load_settings_leniently(config)[0].data_dir
    try:
        found = data_dir.stat()
    except OSError:  # no data folder yet: nothing of anyone else's to keep
        return
    if found.st_uid == 0 or not stat.S_ISDIR(found.st_mode):
        return
    try:
        owner = pwd.getpwuid(found.st_uid)
    except KeyError:
        raise BadInput(f"{data_dir} belongs to uid {found.st_uid}, which has no account: chown -R it to the "
                       f"service's user (e.g. anchor:anchor), then run `sudo -u anchor anchor …`") from None
    os.initgroups(owner.pw_name, owner.pw_gid)  # groups first: only root may set them
    os.setgid(owner.pw_gid)
    os.setuid(owner.pw_uid)
    # What `sudo -u` sets too: anything written under "~" (font caches…) goes to the owner's home, not root's.
    os.environ.update(HOME=owner.pw_dir, USER=owner.pw_name, LOGNAME=owner.pw_name)
    err().print(escape(f"running as {owner.pw_name}, the owner of {data_dir}"), highlight=False)

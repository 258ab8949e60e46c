"""--json: what a command lists, as one JSON array, one object a line, written in chunks as the rows stream
(`anchor plan --json` may write half a million in constant memory). Times are ISO 8601 with their offset."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping
from typing import TextIO

CHUNK = 4096


def write_json_array(items: Iterable[Mapping[str, object]], out: TextIO | None = None) -> None:
    out = out or sys.stdout
    encode = json.JSONEncoder(ensure_ascii=False).encode
    chunk: list[str] = []
    opened = False
    for item in items:
        chunk.append(encode(item))
        if len(chunk) >= CHUNK:
            out.write(("," if opened else "[") + "\n " + ",\n ".join(chunk))
            opened, chunk = True, []
    if chunk:
        out.write(("," if opened else "[") + "\n " + ",\n ".join(chunk))
        opened = True
    out.write("\n]\n" if opened else "[]\n")


def write_json_document(document: Mapping[str, object], out: TextIO | None = None) -> None:
    (out or sys.stdout).write(json.dumps(document, ensure_ascii=False, indent=1) + "\n")

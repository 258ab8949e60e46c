"""`anchor audit export` and `anchor audit verify-export`: a period of the as-run log an auditor can check
offline, without the database, and without trusting whoever hands it over.

An export is a folder:
  airings.csv    the final airings planned in [from, to) (every outcome; rows still on air are left out): the
                 sealed fields, then `empty_fields` and the evidence of each airing that went out;
  approvals.csv  the approvals those airings aired under, and every approval action in the period (on the
                 scripts those airings aired, when the export is of one channel);
  seals.csv      the chain's links from the first exported row's link to the chain's end when exported;
  manifest.json  each file's SHA-256, the period, the channel, the export time, the chain's last seal, counts,
                 and how to recompute every digest and link;
  manifest.sig   the Ed25519 signature of manifest.json's bytes (64 raw bytes) with the institution's key
                 (credentials: ANCHOR_AUDIT_SIGNING_KEY_INSTITUTION, or the credentials file
                 audit-signing-key-institution / audit-signing-key). `openssl pkeyutl -verify -pubin -inkey
                 public.pem -rawin -in manifest.json -sigfile manifest.sig` checks it too.

A cell holds the row's canonical value (anchor.store.canonical: times in UTC to the microsecond, outcomes by
value); an empty cell is null unless its column is named in the row's `empty_fields` (then it is "").
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from anchor.audit import AuditError
from anchor.audit.evidence import Evidence, evidence_name
from anchor.audit.verify import KINDS, MODELS, SEALED_FIELDS, Kind, is_final, reader, row_object, streamed
from anchor.clock import as_utc
from anchor.credentials import credential_file_name, env_name, find_secret
from anchor.store import GENESIS, Airing, Approval, Outcome, Seal, canonical, digest, link, open_engine, table_of

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

FORMAT = "anchor-audit-export/1"
SIGNING_SECRET = "audit-signing-key"
SIGNING_OWNER = "institution"
AIRINGS, APPROVALS, SEALS = "airings.csv", "approvals.csv", "seals.csv"
FILES: dict[Kind | str, str] = {"airing": AIRINGS, "approval": APPROVALS, "seal": SEALS}
MANIFEST, SIGNATURE = "manifest.json", "manifest.sig"
EMPTY = "empty_fields"
EVIDENCE_COLUMNS = ("evidence", "evidence_kept")
SEAL_COLUMNS = ("seq", "kind", "row_id", "digest", "previous", "seal", "sealed_at")
ENCODING = "utf-8-sig"  # with a byte-order mark: Excel and WPS open the Chinese text as UTF-8
WENT_OUT = (Outcome.AIRED, Outcome.LATE, Outcome.INTERRUPTED)


def columns(kind: Kind) -> tuple[str, ...]:
    return (*SEALED_FIELDS[kind], EMPTY, *(EVIDENCE_COLUMNS if kind == "airing" else ()))


# -- the signing key ----------------------------------------------------------------------------------------


def signing_key() -> Ed25519PrivateKey:
    """The institution's Ed25519 key from the credentials (never anchor.toml); AuditError says how to set one."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    pem = find_secret(SIGNING_SECRET, SIGNING_OWNER)
    where = (f"the environment variable {env_name(SIGNING_SECRET, SIGNING_OWNER)}, or the credentials file "
             f"{credential_file_name(SIGNING_SECRET, SIGNING_OWNER)} (or {SIGNING_SECRET}) in $CREDENTIALS_DIRECTORY "
             "(systemd LoadCredential=)")
    if pem is None:
        # The key is made where credentials live, root-only, never in the checkout (README: Proving what aired).
        stored = f"/etc/anchor/credentials/{credential_file_name(SIGNING_SECRET, SIGNING_OWNER)}"
        raise AuditError(f"no audit signing key: set {where} to the institution's Ed25519 private key (PEM). Make "
                         f"one with `sudo sh -c 'umask 077 && openssl genpkey -algorithm ed25519 -out {stored}'` "
                         f"and give auditors its public key: `sudo openssl pkey -in {stored} -pubout > "
                         "institution.pub`")
    try:
        key = load_pem_private_key(pem.encode() + b"\n", password=None)
    except (ValueError, TypeError) as exc:
        raise AuditError(f"the audit signing key in {where} is not an unencrypted PEM private key ({exc}); make "
                         "one with `openssl genpkey -algorithm ed25519`") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise AuditError(f"the audit signing key in {where} is a {type(key).__name__}, not Ed25519; make one "
                         "with `openssl genpkey -algorithm ed25519`")
    return key


def key_id(key: Ed25519PublicKey) -> str:
    """SHA-256 of the raw 32-byte public key: which key signed, written in the manifest."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return hashlib.sha256(key.public_bytes(Encoding.Raw, PublicFormat.Raw)).hexdigest()


# -- rows ⇄ CSV ---------------------------------------------------------------------------------------------


def _cells(row: Airing | Approval) -> tuple[list[str], str]:
    """The row's sealed fields as canonical values, and the fields that are the empty string."""
    kind: Kind = "airing" if isinstance(row, Airing) else "approval"
    content = json.loads(canonical(row))
    cells, empty = [], []
    for name in SEALED_FIELDS[kind]:
        value = content[name]
        if value == "":
            empty.append(name)
        cells.append("" if value is None else str(value))
    return cells, " ".join(empty)


def _parser(kind: Kind, name: str) -> Any:
    """Cell text → the value the row object holds (what the ORM would have loaded)."""
    column_type = table_of(MODELS[kind]).c[name].type
    if isinstance(column_type, sa.Enum) and column_type.enum_class is not None:
        return column_type.enum_class
    if isinstance(column_type, sa.Integer):
        return int
    if isinstance(column_type, sa.TypeDecorator) and isinstance(column_type.impl_instance, sa.DateTime):
        return datetime.fromisoformat
    return str


def row_from_cells(kind: Kind, record: dict[str, str]) -> Airing | Approval:
    """A row object from a CSV record (see the module's cell rule); ValueError on a cell that cannot be one."""
    empty = set(record.get(EMPTY, "").split())
    values: dict[str, object] = {}
    for name in SEALED_FIELDS[kind]:
        cell = record[name]
        if cell == "":
            values[name] = "" if name in empty else None
        else:
            values[name] = _parser(kind, name)(cell)
    return row_object(kind, values)


def _csv_bytes(header: Sequence[str], records: Iterable[Sequence[object]]) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(records)
    return text.getvalue().encode(ENCODING)


def _records(data: bytes, file: str, header: Sequence[str]) -> Iterator[dict[str, str]]:
    try:
        lines = csv.reader(io.StringIO(data.decode(ENCODING), newline=""))
        found = next(lines, None)
        if found is None or tuple(found) != tuple(header):
            raise AuditError(f"{file}: its header is not {','.join(header)}")
        for number, cells in enumerate(lines, start=2):
            if len(cells) != len(header):
                raise AuditError(f"{file} line {number}: {len(cells)} cells, not {len(header)}")
            yield dict(zip(header, cells, strict=True))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise AuditError(f"{file}: not a UTF-8 CSV file ({exc})") from None


def _utc_text(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat(timespec="microseconds")


# -- export -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Exported:
    directory: Path
    manifest: dict[str, Any]

    @property
    def counts(self) -> dict[str, Any]:
        return self.manifest["counts"]  # type: ignore[no-any-return]


def export_period(url: str, start: datetime, end: datetime, channel: str | None, out: Path, key: Ed25519PrivateKey,
                  data_dir: Path, now: datetime | None = None) -> Exported:
    """Write the export of [start, end) (one channel, or all) into `out` (new or empty) and sign it."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise AuditError(f"{out} exists and is not an empty folder: export into a new one")
    now = now or datetime.now(UTC)
    airing, approval, seal = table_of(Airing), table_of(Approval), table_of(Seal)
    engine = open_engine(url)
    try:
        # One snapshot: the rows, their links and the chain's end as of one instant, while the daemon seals on.
        snapshot = {"isolation_level": "REPEATABLE READ"} if engine.dialect.name == "postgresql" else {}
        with engine.connect().execution_options(**snapshot) as connection, connection.begin():
            where = [airing.c.planned_at >= start, airing.c.planned_at < end]
            if channel is not None:
                where.append(airing.c.channel == channel)
            found = list(reader("airing", connection.dialect).rows(connection, where))
            airings = [row for row in found if is_final(row)]
            on_air = len(found) - len(airings)
            aired_under = {row.approval_id for row in airings if isinstance(row, Airing) and row.approval_id}
            in_period = sa.and_(approval.c.at >= start, approval.c.at < end)
            if channel is not None:
                in_period = sa.and_(in_period, approval.c.script.in_(sorted({str(r.script) for r in airings})))
            approvals = list(reader("approval", connection.dialect).rows(
                connection, [sa.or_(approval.c.id.in_(sorted(aired_under)), in_period)]))
            wanted: dict[tuple[str, int], str] = {}
            for row in (*airings, *approvals):
                assert row.id is not None
                wanted[("airing" if isinstance(row, Airing) else "approval", row.id)] = digest(row)
            first_seq = _first_seq(connection, seal, airing, approval, where, [approval.c.id.in_(
                [row_id for kind, row_id in wanted if kind == "approval"])]) if wanted else None
            last = connection.execute(sa.select(seal.c.seq, seal.c.seal).order_by(seal.c.seq.desc()).limit(1)).first()
            links = _links(connection, seal, first_seq, wanted) if first_seq is not None else []
    finally:
        engine.dispose()
    last_seq, last_seal = (last[0], last[1]) if last else (None, GENESIS)
    if links and links[-1][5] != last_seal:
        raise AuditError("the chain grew while it was exported: export again")

    evidence = Evidence(data_dir)
    kept = 0
    airing_records = []
    for row in airings:
        assert isinstance(row, Airing)
        cells, empty = _cells(row)
        named = ""
        present = ""
        if row.audio_hash and row.started_at is not None and row.outcome in WENT_OUT:
            try:
                named = evidence_name(row.audio_hash)
                present = "yes" if evidence.path(row.audio_hash).is_file() else "no"
            except AuditError:
                named, present = "", "no"
            kept += present == "yes"
        airing_records.append([*cells, empty, named, present])
    approval_records = [[*cells, empty] for cells, empty in map(_cells, approvals)]
    files = {AIRINGS: _csv_bytes(columns("airing"), airing_records),
             APPROVALS: _csv_bytes(columns("approval"), approval_records),
             SEALS: _csv_bytes(SEAL_COLUMNS, links)}
    outcomes = Counter(str(row.outcome.value) for row in airings if isinstance(row, Airing))
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "exported_at": _utc_text(now),
        "period": {"from": _utc_text(start), "to": _utc_text(end),
                   "rule": "airings planned at or after `from` and before `to`"},
        "channel": channel,
        "files": {name: {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data),
                         "rows": len({AIRINGS: airing_records, APPROVALS: approval_records, SEALS: links}[name])}
                  for name, data in files.items()},
        "counts": {"airings": len(airings), "outcomes": dict(sorted(outcomes.items())),
                   "approvals": len(approvals), "seals": len(links),
                   "evidence_named": sum(1 for r in airing_records if r[-2]), "evidence_kept": kept,
                   "left_out_on_air": on_air},
        "chain": {"first_seq": links[0][0] if links else None, "first_previous": links[0][4] if links else None,
                  "last_seq": last_seq, "last_seal": last_seal},
        "signing_key": {"algorithm": "Ed25519", "public_key_sha256": key_id(key.public_key()),
                        "signature_file": SIGNATURE, "signed": "the bytes of manifest.json"},
        "recompute": {
            "sealed_fields": {kind: list(SEALED_FIELDS[kind]) for kind in KINDS},
            "cells": "each sealed field's canonical value; an empty cell is null unless named in empty_fields "
                     "(then the empty string); times UTC ISO 8601 to the microsecond",
            "digest": "sha256 hex of the sealed fields as JSON: keys sorted, separators ',' ':', UTF-8 unescaped "
                      "(json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(',', ':')))",
            "seal": "sha256 hex of the text previous + digest; each link's previous is the seal before it",
            "evidence": "evidence names data_dir/evidence/<audio_hash>.wav on the broadcast PC: the exact audio "
                        "that aired (its SHA-256 is audio_hash)",
            "csv": "UTF-8 with a byte-order mark, CRLF line ends",
        },
    }
    manifest_bytes = (json.dumps(manifest, ensure_ascii=False, indent=2) + "\n").encode()
    out.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (out / name).write_bytes(data)
    (out / MANIFEST).write_bytes(manifest_bytes)
    (out / SIGNATURE).write_bytes(key.sign(manifest_bytes))
    return Exported(out, manifest)


def _first_seq(connection: Any, seal: Any, airing: Any, approval: Any, airing_where: list[Any],
               approval_where: list[Any]) -> int | None:
    seqs = []
    for kind, table, where in (("airing", airing, airing_where), ("approval", approval, approval_where)):
        seqs.append(connection.execute(sa.select(sa.func.min(seal.c.seq)).select_from(
            seal.join(table, sa.and_(seal.c.kind == kind, seal.c.row_id == table.c.id))).where(*where)).scalar())
    found = [s for s in seqs if s is not None]
    return min(found) if found else None


def _links(connection: Any, seal: Any, first_seq: int, wanted: dict[tuple[str, int], str]) -> list[list[Any]]:
    """The links from `first_seq` to the end, checked as they are read: an export never signs a broken chain."""
    query = sa.select(*(seal.c[name] for name in SEAL_COLUMNS)).where(seal.c.seq >= first_seq).order_by(seal.c.seq)
    links: list[list[Any]] = []
    expected: str | None = None
    found = 0
    advice = "run `anchor audit verify`; the export is refused until the log is restored"
    for seq, kind, row_id, row_digest, previous, sealed, sealed_at in streamed(connection, query):
        if (expected is not None and previous != expected) or link(previous, row_digest) != sealed:
            raise AuditError(f"the seal chain is broken at seq {seq}: {advice}")
        mine = wanted.get((kind, row_id))
        if mine is not None:
            if mine != row_digest:
                raise AuditError(f"{kind} {row_id} no longer matches its seal (seq {seq}): {advice}")
            found += 1
        stamp = as_utc(sealed_at)
        links.append([seq, kind, row_id, row_digest, previous, sealed, _utc_text(stamp)])
        expected = sealed
    if found != len(wanted):
        missing = sorted(set(wanted) - {(str(k), int(r)) for _, k, r, *_ in links})
        kind, row_id = missing[0]
        raise AuditError(f"{kind} {row_id} is final but has no seal (and {len(missing) - 1} more): a running daemon "
                         f"seals a row within a minute, so export again then; if it stays, {advice}")
    return links


# -- verify an export, offline -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verified:
    key_id: str
    files: int
    rows: dict[str, int]
    links: int
    last_seq: int | None
    last_seal: str


def load_public_key(pem: bytes, source: str) -> Ed25519PublicKey:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        key = load_pem_public_key(pem)
    except (ValueError, TypeError) as exc:
        raise AuditError(f"{source} is not a PEM public key ({exc}); make it from the signing key with `openssl "
                         "pkey -in audit-signing-key.pem -pubout -out audit-public-key.pem`") from None
    if not isinstance(key, Ed25519PublicKey):
        raise AuditError(f"{source} is a {type(key).__name__}, not an Ed25519 public key")
    return key


def verify_export(directory: Path, key: Ed25519PublicKey, key_source: str = "the public key") -> Verified:
    """Check an export without the database: the signature, every file's SHA-256, then every digest and link
    recomputed from the rows. AuditError names the first file that is not as signed."""
    from cryptography.exceptions import InvalidSignature

    def read(name: str) -> bytes:
        try:
            return (directory / name).read_bytes()
        except FileNotFoundError:
            raise AuditError(f"{name} is missing from {directory}") from None
        except OSError as exc:
            raise AuditError(f"cannot read {directory / name}: {exc.strerror}") from None

    manifest_bytes, signature = read(MANIFEST), read(SIGNATURE)
    fingerprint = key_id(key)
    try:
        key.verify(signature, manifest_bytes)
    except InvalidSignature:
        signer = _signer(manifest_bytes)
        if len(signature) != 64:
            raise AuditError(f"{SIGNATURE} is not an Ed25519 signature ({len(signature)} bytes, not 64): it was "
                             "changed") from None
        if signer is not None and signer != fingerprint:
            raise AuditError(f"{MANIFEST} says it was signed by the key {signer[:16]}…, not by {key_source} "
                             f"({fingerprint[:16]}…): verify with the institution's public key (or {MANIFEST} "
                             "was changed)") from None
        raise AuditError(f"{MANIFEST} or {SIGNATURE} was changed: the signature does not verify with {key_source} "
                         f"({fingerprint[:16]}…)") from None
    manifest = json.loads(manifest_bytes)
    if manifest.get("format") != FORMAT:
        raise AuditError(f"{MANIFEST}: format {manifest.get('format')!r} is not {FORMAT}")
    files = manifest["files"]
    contents: dict[str, bytes] = {}
    for name in (AIRINGS, APPROVALS, SEALS):
        if name not in files:
            raise AuditError(f"{MANIFEST} does not list {name}")
        data = read(name)
        found = hashlib.sha256(data).hexdigest()
        if found != files[name]["sha256"]:
            raise AuditError(f"{name} was changed: its SHA-256 is {found}, the signed manifest says "
                             f"{files[name]['sha256']}")
        contents[name] = data

    links = list(_records(contents[SEALS], SEALS, SEAL_COLUMNS))
    by_row: dict[tuple[str, int], dict[str, str]] = {}
    expected = manifest["chain"]["first_previous"]
    for number, record in enumerate(links, start=2):
        if expected is not None and record["previous"] != expected:
            raise AuditError(f"{SEALS} line {number} (seq {record['seq']}): its previous is not the seal before it")
        if link(record["previous"], record["digest"]) != record["seal"]:
            raise AuditError(f"{SEALS} line {number} (seq {record['seq']}): its seal is not sha256(previous + digest)")
        by_row[(record["kind"], int(record["row_id"]))] = record
        expected = record["seal"]
    if links and (links[-1]["seal"] != manifest["chain"]["last_seal"]
                  or links[0]["seq"] != str(manifest["chain"]["first_seq"])):
        raise AuditError(f"{SEALS}: its links do not run from the manifest's first seq to its last seal")

    rows: dict[str, int] = {}
    for kind in KINDS:
        file = FILES[kind]
        count = 0
        for number, record in enumerate(_records(contents[file], file, columns(kind)), start=2):
            try:
                row = row_from_cells(kind, record)
            except ValueError as exc:
                raise AuditError(f"{file} line {number}: {exc}") from None
            sealed = by_row.get((kind, int(record["id"])))
            if sealed is None:
                raise AuditError(f"{file} line {number} ({kind} {record['id']}): no link in {SEALS} seals it")
            if digest(row) != sealed["digest"]:
                raise AuditError(f"{file} line {number} ({kind} {record['id']}): its digest is not the one sealed "
                                 f"at seq {sealed['seq']}")
            named = record.get("evidence", "")
            if named and named != evidence_name(record["audio_hash"]):
                raise AuditError(f"{file} line {number}: its evidence is not named by its audio hash")
            count += 1
        if count != files[file]["rows"]:
            raise AuditError(f"{file}: {count} rows, the manifest says {files[file]['rows']}")
        rows[kind] = count
    return Verified(fingerprint, len(files) + 1, rows, len(links), manifest["chain"]["last_seq"],
                    manifest["chain"]["last_seal"])


def _signer(manifest_bytes: bytes) -> str | None:
    try:
        value = json.loads(manifest_bytes)["signing_key"]["public_key_sha256"]
    except (ValueError, KeyError, TypeError):
        return None
    return value if isinstance(value, str) else None

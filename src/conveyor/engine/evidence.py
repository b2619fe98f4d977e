"""Evidence bundles: exporting one Release's evidence as a zip, and checking one offline.

Export records an `evidence.exported` Event under the Release, signs a fresh
tree head over the whole log (so the bundle proves against a head signed by
the current key, covering its own export), proves every related Event
against it in one pass over the log's hashes, and writes the zip under a
temporary name, renamed into place only when complete. Verifying needs no
workspace and no store: only the zip and, ideally, a public key you trust.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import time
import zipfile
import zlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from conveyor.audit import evidence as fmt
from conveyor.audit.chain import NewEvent, StoredEvent, rehash
from conveyor.audit.evidence_verify import (
    BundleReadError,
    NotABundle,
    Readable,
    Verification,
    verify_bundle,
)
from conveyor.audit.merkle import PathCollector, event_leaf
from conveyor.audit.tree_head import TreeHead
from conveyor.core.clock import Clock, iso
from conveyor.core.errors import IntegrityError, UsageError
from conveyor.core.values import field, frozen
from conveyor.engine import audit_key
from conveyor.engine.audit import sign_tree_head
from conveyor.engine.change_records import ChangeRecords, run_tests
from conveyor.engine.evidence_docs import about, promotions_document, release_document, run_document
from conveyor.engine.evidence_report import ReportInput, write_report
from conveyor.engine.releases import ReleaseService
from conveyor.engine.workspace import Workspace
from conveyor.policy.waiver import Waiver
from conveyor.release.change_record import ChangeRecord, to_json, to_markdown
from conveyor.release.model import Release
from conveyor.store import events as event_log
from conveyor.store import evidence as evidence_store
from conveyor.store import runs as run_store
from conveyor.store import waivers as waiver_store
from conveyor.store.db import Database

EXPORTED = "evidence.exported"
_DESCRIPTIONS = {
    "release.json": "the Release: service, version, identity, artifact digests, config, commits",
    "run.json": "the Run that built the Release: every job, its outputs and test results",
    "promotions.json": "every Promotion of the Release: requirements, gate report, approvals, "
    "waivers",
    fmt.EVENTS: "the related Events, one a line, each with its RFC 6962 inclusion proof",
    fmt.TREE_HEAD: "the signed tree head every inclusion proof leads to",
    fmt.PUBLIC_KEY: "the Ed25519 public key that signed the tree head and the manifest",
    fmt.REPORT: "this evidence for people: one self-contained page",
}


@frozen
class EvidenceExport:
    """A written bundle: where, about what, and what it proves against."""

    path: Path
    release: Release
    events: int
    promotions: int
    change_records: int
    head: TreeHead
    files: tuple[fmt.FileEntry, ...]


@frozen
class _Contents:
    """What goes into one evidence bundle."""

    release: Release
    report: ReportInput
    prefixes: tuple[str, ...]
    records: Mapping[int, ChangeRecord]
    waivers: Mapping[int, tuple[Waiver, ...]] = field(default_factory=dict)


class EvidenceService:
    """Exports the evidence bundles of one workspace's Releases."""

    def __init__(
        self,
        workspace: Workspace,
        *,
        db: Database,
        releases: ReleaseService,
        change_records: ChangeRecords,
        clock: Clock,
        environ: Mapping[str, str],
    ) -> None:
        self.workspace = workspace
        self.db = db
        self.releases = releases
        self.change_records = change_records
        self.clock = clock
        self.environ = environ

    def export(self, service: str, version: str, dest: Path, *, actor: str) -> EvidenceExport:
        """Write the evidence bundle of one Release to `dest` (a zip)."""
        if not dest.parent.is_dir():
            raise UsageError(f"cannot write {dest}: {dest.parent} is not a directory")
        release = self.releases.get_release(version, service=service)
        self._record_export(release, actor)
        head = sign_tree_head(self.db, self.workspace.state_dir, self.clock, environ=self.environ)
        contents = self._gather(release, head, actor)
        proofs = self._proofs(contents.prefixes, head)
        partial = dest.with_name(f".{dest.name}.{secrets.token_hex(6)}.part")
        try:
            with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
                files = self._write(archive, contents, proofs)
            partial.replace(dest)
        finally:
            partial.unlink(missing_ok=True)
        events = next(f.count for f in files if f.path == fmt.EVENTS) or 0
        promotions = len(contents.report.promotions)
        return EvidenceExport(dest, release, events, promotions, len(contents.records), head, files)

    def _record_export(self, release: Release, actor: str) -> None:
        data = {"service": release.service, "version": release.version, "run": release.run_id}
        event = NewEvent(EXPORTED, release.subject, actor, self.clock.now(), data)
        with self.db.write() as tx:
            event_log.append(tx, [event])

    def _gather(self, release: Release, head: TreeHead, actor: str) -> _Contents:
        run = run_store.get_run(self.db, run_id=release.run_id)
        promotions = evidence_store.promotions_of_release(
            self.db, project=release.project, service=release.service, version=release.version
        )
        records = {
            int(p.id): self.change_records.build(p)
            for p in promotions
            if self.change_records.filed(p)
        }
        waivers = self._waivers_used(release, head)
        report = ReportInput(
            release,
            run,
            run_tests(run),
            promotions,
            records,
            head,
            self.clock.now(),
            actor,
            waivers,
        )
        # Each waiver a promotion relied on brings its own Events (requested, approved...).
        subjects = {w.subject: None for used in waivers.values() for w in used}
        prefixes = (release.subject, f"run/{run.id}", *subjects)
        return _Contents(release, report, prefixes, records, waivers)

    def _waivers_used(self, release: Release, head: TreeHead) -> dict[int, tuple[Waiver, ...]]:
        """The Waivers each Promotion of the Release relied on, from its `waiver.used` Events."""
        used: dict[int, dict[int, None]] = {}
        for event in evidence_store.events_under(self.db, (release.subject,), until=head.size):
            if event.kind == "waiver.used":
                data = json.loads(event.data_json)
                used.setdefault(int(data["promotion"]), {})[int(data["waiver"])] = None
        ids = sorted({w for found in used.values() for w in found})
        waivers = {int(w.id): w for w in waiver_store.by_ids(self.db, ids)}
        return {
            pid: tuple(waivers[w] for w in found if w in waivers) for pid, found in used.items()
        }

    def _proofs(self, prefixes: Sequence[str], head: TreeHead) -> dict[int, list[bytes]]:
        """The inclusion proof of every related Event (by seq), from one pass over the log."""
        related = evidence_store.events_under(self.db, prefixes, until=head.size)
        collector = PathCollector(head.size, [event.seq - 1 for event in related])
        expected = 1
        for seq, digest in evidence_store.chain_hashes_until(self.db, until=head.size):
            if seq != expected:
                break
            collector.append(event_leaf(digest))
            expected += 1
        if expected - 1 != head.size:
            raise IntegrityError(
                f"event {expected} is missing from the log, though a tree head covers it; "
                "run `conveyor audit verify`"
            )
        root, paths = collector.finish()
        if root != head.root:
            raise IntegrityError(
                "the log no longer gives the root of the tree head just signed; "
                "run `conveyor audit verify`"
            )
        return {index + 1: path for index, path in paths.items()}

    def _write(
        self, archive: zipfile.ZipFile, contents: _Contents, proofs: Mapping[int, list[bytes]]
    ) -> tuple[fmt.FileEntry, ...]:
        writer = _Writer(archive, self.clock.now())
        report = contents.report
        writer.json("release.json", release_document(contents.release))
        writer.json("run.json", run_document(report.run, report.tests))
        paths = {pid: f"change-records/{pid}.json" for pid in contents.records}
        writer.json(
            "promotions.json", promotions_document(report.promotions, paths, contents.waivers)
        )
        for pid, record in contents.records.items():
            what = f"the change record of promotion {pid}"
            writer.json(paths[pid], to_json(record), what + " (JSON)")
            writer.raw(
                f"change-records/{pid}.md", to_markdown(record).encode(), what + " (Markdown)"
            )
        with writer.member(fmt.EVENTS, lines=True) as out:
            for event in self._related(contents.prefixes, report.head):
                out.line(fmt.event_line(event, proofs[event.seq]))
        writer.raw(fmt.TREE_HEAD, fmt.head_document(report.head))
        key = audit_key.signing_key(self.workspace.state_dir, self.environ)
        writer.raw(fmt.PUBLIC_KEY, audit_key.public_pem(key.public_key()).encode())
        with writer.member(fmt.REPORT) as out:
            events = self._related(contents.prefixes, report.head)
            write_report(lambda text: out.write(text.encode()), report, events)
        manifest = fmt.manifest_document(
            about=about(contents.release),
            created_at=iso(writer.now) or "",
            head=report.head,
            files=writer.entries,
        )
        writer.put(fmt.MANIFEST, manifest)
        writer.put(fmt.SIGNATURE, fmt.signature_document(key, manifest))
        return tuple(writer.entries)

    def _related(self, prefixes: Sequence[str], head: TreeHead) -> Iterator[StoredEvent]:
        for event in evidence_store.events_under(self.db, prefixes, until=head.size):
            if rehash(event) != event.hash:
                raise IntegrityError(
                    f"event {event.seq} does not match its hash, so no bundle can vouch for it; "
                    "run `conveyor audit verify`"
                )
            yield event


class _Writer:
    """Adds files to the zip, each hashed as it is written, and keeps their manifest entries."""

    def __init__(self, archive: zipfile.ZipFile, now: float) -> None:
        self.archive = archive
        self.now = now
        self.entries: list[fmt.FileEntry] = []
        self._date = time.gmtime(now)[:6]

    def _info(self, name: str) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(name, date_time=self._date)
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o644 << 16  # readable once unzipped, like any exported document
        return info

    @contextlib.contextmanager
    def member(
        self, name: str, description: str = "", *, lines: bool = False
    ) -> Iterator[fmt.DigestingWriter]:
        with self.archive.open(self._info(name), "w", force_zip64=True) as stream:
            out = fmt.DigestingWriter(stream)
            yield out
        self.entries.append(out.entry(name, description or _DESCRIPTIONS[name], lines=lines))

    def raw(self, name: str, data: bytes, description: str = "") -> None:
        with self.member(name, description) as out:
            out.write(data)

    def json(self, name: str, value: object, description: str = "") -> None:
        self.raw(
            name, json.dumps(value, indent=2, ensure_ascii=False).encode() + b"\n", description
        )

    def put(self, name: str, data: bytes) -> None:
        """A file the manifest does not list: the manifest itself and its signature."""
        self.archive.writestr(self._info(name), data)


# --- verifying -------------------------------------------------------------------------


class _Guarded:
    """A zip member's stream whose damage (bad CRC, broken deflate data) is BundleReadError."""

    def __init__(self, stream: Readable) -> None:
        self._stream = stream

    def read(self, size: int = -1, /) -> bytes:
        with _damage():
            return self._stream.read(size)

    def readline(self, size: int = -1, /) -> bytes:
        with _damage():
            return self._stream.readline(size)


@contextlib.contextmanager
def _damage() -> Iterator[None]:
    try:
        yield
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:
        raise BundleReadError(str(exc) or type(exc).__name__) from None


class ZipBundle:
    """The files of a bundle in a zip archive (the BundleFiles port)."""

    def __init__(self, archive: zipfile.ZipFile) -> None:
        self._archive = archive

    def names(self) -> list[str]:
        return [info.filename for info in self._archive.infolist()]

    @contextlib.contextmanager
    def open(self, name: str) -> Iterator[Readable]:
        with _damage():
            stream = self._archive.open(name)
        with stream:
            yield _Guarded(stream)


def verify_file(path: Path, *, key_path: Path | None = None) -> Verification:
    """Check the bundle at `path` with the public key at `key_path`, or the bundle's own."""
    key = None
    if key_path is not None:
        try:
            key = fmt.load_public_key(key_path.read_bytes())
        except (OSError, ValueError) as exc:
            raise UsageError(f"--key {key_path}: {_reason(exc)}") from None
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise NotABundle(f"{path} is not a zip archive, so not an evidence bundle") from None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {_reason(exc)}") from None
    with archive:
        try:
            return verify_bundle(ZipBundle(archive), key=key)
        except NotABundle as exc:
            raise NotABundle(f"{path}: {exc}") from None


def _reason(exc: Exception) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc)

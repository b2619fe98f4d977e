"""`report.html`: an evidence bundle for people, in one self-contained page.

No scripts, fonts, images or style sheets from elsewhere: the page reads the
same offline, years later. Every value is escaped, since commit messages,
comments and names are text anyone could have written. It is written piece
by piece, so the Events are streamed into it, never held.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from html import escape

from conveyor.audit.chain import StoredEvent
from conveyor.audit.tree_head import TreeHead
from conveyor.core.clock import iso
from conveyor.core.records import RunRecord, TestCounts
from conveyor.core.values import field, frozen
from conveyor.policy.waiver import Waiver
from conveyor.promotion.model import Promotion
from conveyor.release.change_record import ChangeRecord
from conveyor.release.model import Release, identity_digest

Write = Callable[[str], None]

_STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:72rem;padding:0 1rem}
body{color:#1d1d1f}
h1{font-size:1.6rem}h2{margin-top:2rem;border-bottom:1px solid #ccc}h3{margin-bottom:.3rem}
table{border-collapse:collapse;margin:.5rem 0;width:100%}
th,td{border:1px solid #ddd;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f4f4f6}code{font-size:.9em;word-break:break-all}
.passed,.low{color:#176c2e}.waiting,.medium{color:#8a5a00}.blocked,.high,.failed{color:#b00020}
"""


# Nothing but the inline style may load, whatever a value holds.
_CSP = (
    '<meta http-equiv="Content-Security-Policy" '
    "content=\"default-src 'none'; style-src 'unsafe-inline'\">"
)


@frozen
class ReportInput:
    """Everything the report shows but the Events."""

    release: Release
    run: RunRecord
    tests: TestCounts | None
    promotions: Sequence[Promotion]
    change_records: Mapping[int, ChangeRecord]
    head: TreeHead
    created_at: float
    created_by: str
    # The Waivers each Promotion relied on, by promotion id.
    waivers: Mapping[int, Sequence[Waiver]] = field(default_factory=dict)


def write_report(write: Write, data: ReportInput, events: Iterable[StoredEvent]) -> None:
    """Write the whole page through `write`."""
    release = data.release
    title = f"Evidence: {release.service} {release.version}"
    write(
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">{_CSP}'
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>\n"
        f"<h1>{_e(title)}</h1>\n"
        f"<p>Exported {_e(iso(data.created_at))} by {_e(data.created_by)}.</p>\n"
    )
    _verify_section(write, data.head)
    _release_section(write, release)
    _run_section(write, data.run, data.tests)
    _promotions_section(write, data.promotions, data.change_records, data.waivers)
    _events_section(write, events)
    write("</body></html>\n")


def _e(value: object) -> str:
    return escape("" if value is None else str(value), quote=True)


def _table(write: Write, head: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    write("<table><tr>" + "".join(f"<th>{_e(h)}</th>" for h in head) + "</tr>\n")
    for row in rows:
        write("<tr>" + "".join(f"<td>{_e(cell)}</td>" for cell in row) + "</tr>\n")
    write("</table>\n")


def _facts(write: Write, facts: Sequence[tuple[str, object]]) -> None:
    write("<table>\n")
    for name, value in facts:
        write(f"<tr><th>{_e(name)}</th><td><code>{_e(value)}</code></td></tr>\n")
    write("</table>\n")


def _verify_section(write: Write, head: TreeHead) -> None:
    write(
        "<h2>Checking this bundle</h2>\n<p>Offline, with the public key you trust for this "
        "workspace (<code>conveyor audit key</code> prints it): "
        "<code>conveyor evidence verify BUNDLE.zip --key KEY.pem</code>. It checks every "
        "file against the signed manifest, every Event against its hash and the Event before "
        "it, and every Event's inclusion proof against this signed tree head.</p>\n"
    )
    _facts(
        write,
        [
            ("tree size", head.size),
            ("root", head.root.hex()),
            ("signed at", head.timestamp),
            ("key id", head.key_id),
        ],
    )


def _release_section(write: Write, release: Release) -> None:
    write(f"<h2>Release {_e(release.service)} {_e(release.version)}</h2>\n")
    _facts(
        write,
        [
            ("identity", identity_digest(release)),
            ("commit", release.commit_sha or "none"),
            ("run", release.run_id),
            ("config digest", release.config_digest),
            ("previous version", release.previous_version or "none"),
            ("created", f"{iso(release.created_at)} by {release.created_by}"),
        ],
    )
    write("<h3>Artifacts</h3>\n")
    _table(
        write, ("path", "digest", "bytes"), ((a.path, a.digest, a.size) for a in release.artifacts)
    )
    write("<h3>Commits</h3>\n")
    _table(
        write,
        ("commit", "author", "message"),
        (
            (c.sha[:12], c.email, c.message.splitlines()[0] if c.message else "")
            for c in release.commits
        ),
    )


def _run_section(write: Write, run: RunRecord, tests: TestCounts | None) -> None:
    write(f"<h2>Run {_e(run.id)}: {_e(run.status)}</h2>\n")
    summary = "no test results reported"
    if tests is not None:
        summary = f"{tests.passed} passed, {tests.failed} failed, {tests.skipped} skipped"
    _facts(
        write,
        [
            ("branch", run.branch or "none"),
            ("commit", run.commit_sha or "none"),
            ("started by", run.actor),
            ("finished", iso(run.finished_at) or "not finished"),
            ("tests", summary),
        ],
    )
    rows = []
    for job in run.jobs:
        counts = job.tests
        shown = "" if counts is None else f"{counts.passed} passed, {counts.failed} failed"
        if counts is not None and counts.failures:
            shown += "; failed: " + ", ".join(counts.failures)
        seconds = None if job.duration_s is None else round(job.duration_s, 3)
        rows.append((job.name, job.status, seconds, shown))
    _table(write, ("job", "status", "seconds", "tests"), rows)


def _promotions_section(
    write: Write,
    promotions: Sequence[Promotion],
    records: Mapping[int, ChangeRecord],
    waivers: Mapping[int, Sequence[Waiver]],
) -> None:
    write("<h2>Promotions</h2>\n")
    if not promotions:
        write("<p>Never promoted.</p>\n")
    for promotion in promotions:
        write(
            f"<h3>Promotion {_e(promotion.id)} into {_e(promotion.environment)}: "
            f'<span class="{_e(promotion.state)}">{_e(promotion.state)}</span></h3>\n'
            f"<p>Requested by {_e(promotion.requested_by)} at "
            f"{_e(iso(promotion.requested_at))}.</p>\n"
        )
        report = promotion.report
        if report is not None:
            _table(
                write,
                ("gate", "outcome", "reason"),
                ((g.gate, g.outcome, "; ".join([g.reason, *g.notes])) for g in report.gates),
            )
        decisions = [(a.by, a.role, a.verdict, iso(a.at), a.comment) for a in promotion.approvals]
        if decisions:
            _table(write, ("by", "role", "decision", "at", "comment"), decisions)
        else:
            write("<p>No approvals or rejections.</p>\n")
        _waivers(write, waivers.get(int(promotion.id), ()))
        record = records.get(int(promotion.id))
        if record is not None:
            _risk(write, record)


def _waivers(write: Write, used: Sequence[Waiver]) -> None:
    if not used:
        return
    write("<p>Waivers relied on:</p>\n")
    rows = (
        (w.id, w.rule, w.reason, w.requested_by, w.decided_by or "", iso(w.expires_at))
        for w in used
    )
    _table(write, ("waiver", "rule", "reason", "requested by", "approved by", "expires"), rows)


def _risk(write: Write, record: ChangeRecord) -> None:
    level = record.risk.level
    write(
        f"<p>Change record <code>change-records/{_e(record.promotion)}.md</code>: risk "
        f'<strong class="{_e(level)}">{_e(level)}</strong></p>\n<ul>'
        + "".join(f"<li>{_e(reason)}</li>" for reason in record.risk.reasons)
        + "</ul>\n"
    )


def _events_section(write: Write, events: Iterable[StoredEvent]) -> None:
    write(
        "<h2>Events</h2>\n<p>Each is in <code>events.jsonl</code> with its inclusion proof.</p>\n"
    )
    _table(
        write,
        ("seq", "time", "kind", "subject", "actor"),
        ((e.seq, e.ts, e.kind, e.subject, e.actor) for e in events),
    )

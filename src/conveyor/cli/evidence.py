"""`conveyor evidence` and `conveyor change-record`: what an auditor and a change board read."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from conveyor.cli.errors import WORK_FAILED
from conveyor.cli.output import output_file
from conveyor.cli.pipeline import FileOption, JsonOption

if TYPE_CHECKING:
    from conveyor.audit.evidence_verify import Problem, Verification
    from conveyor.control.base import ControlPlane
    from conveyor.engine.evidence import EvidenceExport

app = typer.Typer(
    help=(
        "Evidence bundles: everything behind one Release in one zip that anyone can check "
        "offline with the workspace's public key (`conveyor audit key`).\n\n"
        "A bundle holds the Release, its Run and test results, every Promotion with its "
        "gates and approvals, the change records, the related Events each with an RFC 6962 "
        "inclusion proof, the signed tree head they prove against, the public key, a "
        "signed manifest of every file's digest, and report.html for people."
    ),
    no_args_is_help=True,
)


def register(main: typer.Typer) -> None:
    main.command(name="change-record")(change_record)
    main.add_typer(app, name="evidence")


def _plane(file: Path | None) -> ControlPlane:
    # Against a server (CONVEYOR_SERVER), its store is read and the token's owner exports.
    from conveyor.control.select import open_control_plane

    return open_control_plane(file)


def _print_json(doc: object) -> None:
    from conveyor.cli.render import dumps

    sys.stdout.write(dumps(doc) + "\n")


def change_record(
    promotion: Annotated[
        int,
        typer.Argument(
            help="The promotion's id, from `conveyor promotions`.", min=1, show_default=False
        ),
    ],
    file: FileOption = None,
    json_output: JsonOption = False,
) -> None:
    """Print the change record of a promotion, as Markdown (or --json), as it stands now.

    Promotions into an environment with `change_record: true` get one when
    they are recorded: a summary, the risk (low, medium or high, with its
    reasons), the release notes, every gate with its outcome and reason, the
    approvals, and links to the run and the evidence. With
    CONVEYOR_CHANGE_WEBHOOK set it is also POSTed there as JSON when the
    promotion is recorded. A promotion without one exits 2.
    """
    from conveyor.release.change_record import to_json, to_markdown

    plane = _plane(file)
    try:
        record = plane.change_record(promotion)
    finally:
        plane.close()
    if json_output:
        _print_json(to_json(record))
    else:
        sys.stdout.write(to_markdown(record))


@app.command()
def export(
    service: Annotated[
        str, typer.Argument(help="The service (delivery.service).", show_default=False)
    ],
    version: Annotated[
        str, typer.Argument(help="A released version, or 'latest'.", show_default=False)
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="The zip to write.", show_default=False)
    ],
    file: FileOption = None,
    json_output: JsonOption = False,
) -> None:
    """Export the evidence of one release as a zip that can be checked offline.

    Records the export as an Event, signs a fresh tree head over the whole
    event log, and proves every related Event (the release's, its run's and
    jobs', its promotions' and approvals') against it.

    Example:

      conveyor evidence export payments-api 1.4.0 -o payments-api-1.4.0-evidence.zip
    """
    output_file(output)
    plane = _plane(file)
    try:
        done = plane.export_evidence(service, version, output)
    finally:
        plane.close()
    if json_output:
        _print_json(_export_json(done))
    else:
        typer.echo(_export_text(done))


@app.command()
def verify(
    bundle: Annotated[
        Path, typer.Argument(help="The evidence bundle (a zip).", show_default=False)
    ],
    key: Annotated[
        Path | None,
        typer.Option(
            "--key",
            help="The public key (PEM) you trust; default: the one in the bundle.",
        ),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Check an evidence bundle offline: no workspace, no store, only a public key.

    Checks the tree head's signature, every Event's hash and its link to the
    Event before it where the two are consecutive, every inclusion proof
    against the signed root, every file against the manifest, and the
    manifest's signature. Without --key the bundle's own key is used, which
    shows the bundle is consistent, not who made it: pass the key you trust
    (`conveyor audit key` in the workspace prints it).

    Exit codes: 0 intact; 1 a problem found (the first is named); 2 not a bundle.
    """
    from conveyor.engine.evidence import verify_file

    checked = verify_file(bundle, key_path=key)
    if json_output:
        _print_json(_verification_json(checked))
    else:
        typer.echo(_verification_text(checked))
    if not checked.intact:
        raise typer.Exit(WORK_FAILED)


# --- rendering -------------------------------------------------------------------------


def _export_json(done: EvidenceExport) -> dict[str, object]:
    return {
        "path": str(done.path),
        "service": done.release.service,
        "version": done.release.version,
        "events": done.events,
        "promotions": done.promotions,
        "change_records": done.change_records,
        "tree_head": done.head.to_json(),
        "files": [entry.to_json() for entry in done.files],
    }


def _export_text(done: EvidenceExport) -> str:
    release, head = done.release, done.head
    records = f", {done.change_records} change record(s)" if done.change_records else ""
    return "\n".join(
        [
            f"wrote {done.path}: the evidence of {release.service} {release.version}",
            f"  {done.events} events, each proven against the tree head over {head.size} "
            f"events signed {head.timestamp}",
            f"  {done.promotions} promotion(s){records}; key {head.key_id}",
            f"check it anywhere: conveyor evidence verify {done.path} --key KEY.pem "
            "(`conveyor audit key` prints the key)",
        ]
    )


def _problem_json(problem: Problem) -> dict[str, object]:
    return {"check": problem.check, "where": problem.where, "reason": problem.reason}


def _verification_json(checked: Verification) -> dict[str, object]:
    problems = [_problem_json(p) for p in checked.problems]
    return {
        "intact": checked.intact,
        "about": dict(checked.about),
        "key": {
            "key_id": checked.key.key_id,
            "given": checked.key.given,
            "bundle_key_id": checked.key.bundle_key_id,
            "differs_from_bundle": checked.key.differs,
        },
        "tree_head": None if checked.head is None else checked.head.to_json(),
        "events": checked.events,
        "files": checked.files,
        "first_problem": problems[0] if problems else None,
        "problems": problems,
        "more_problems": checked.more_problems,
    }


def _verification_text(checked: Verification) -> str:
    lines = []
    key = checked.key
    if key.differs:
        lines.append(
            f"note: the key given ({key.key_id}) is not the key in the bundle ({key.bundle_key_id})"
        )
    if not checked.intact:
        first, *rest = checked.problems
        lines.append(f"tampering found: {first}")
        lines += [f"  also: {problem}" for problem in rest]
        if checked.more_problems:
            lines.append(f"  and {checked.more_problems} more")
        return "\n".join(lines)
    about, head = checked.about, checked.head
    size = "?" if head is None else head.size
    lines.append(
        f"the evidence bundle is intact: {about.get('service')} {about.get('version')}, "
        f"{checked.events} events proven against a tree head over {size} events, "
        f"{checked.files} files match the signed manifest"
    )
    if key.given:
        lines.append(f"checked with the key given: {key.key_id}")
    else:
        lines.append(
            f"checked with the key in the bundle ({key.key_id}): this shows the bundle is "
            "consistent, not who made it; pass --key with the key you trust"
        )
    return "\n".join(lines)

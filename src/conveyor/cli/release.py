"""`conveyor release`: make immutable Releases from successful runs, list them, read their notes."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from conveyor.cli.pipeline import FileOption, JsonOption, local_pipeline

if TYPE_CHECKING:
    from conveyor.control.base import ControlPlane
    from conveyor.engine.releases import ReleaseOutcome
    from conveyor.release.model import Release

app = typer.Typer(
    help=(
        "Releases: immutable bundles that can be deployed. A release of a successful "
        "run holds the run's outputs that `delivery.artifacts` names (by digest), the "
        "digest of the `delivery:` section, the source commit and the run itself.\n\n"
        "A version is never reused for other content: creating it again with the same "
        "content returns the recorded release, with other content it is refused (exit 2). "
        "Without --version the next version comes from the Conventional Commits since the "
        "previous release: a `BREAKING CHANGE:` footer or `type!:` makes a major release, "
        "`feat:` a minor one, anything else a patch; the first release is 0.1.0 (1.0.0 "
        "after a breaking change). Released artifacts are never pruned."
    ),
    no_args_is_help=True,
)


def register(main: typer.Typer) -> None:
    main.add_typer(app, name="release")


VersionArgument = Annotated[
    str,
    typer.Argument(
        help="A released version (1.4.0 or v1.4.0), or 'latest' for the highest.",
        show_default=False,
    ),
]
ServiceOption = Annotated[
    str | None,
    typer.Option(
        "--service",
        "-s",
        help="The service, when releases of several are recorded (delivery.service).",
    ),
]


def _plane(file: Path | None) -> ControlPlane:
    from conveyor.control.select import open_control_plane

    return open_control_plane(file)


@app.command()
def create(
    run: Annotated[
        str,
        typer.Option(
            "--run", "-r", help="The run to release: an id from `conveyor runs`, or 'latest'."
        ),
    ],
    version: Annotated[
        str | None,
        typer.Option(
            "--version",
            help="The version, like 1.4.0 or v1.4.0-rc.1 (default: derived from the commits).",
        ),
    ] = None,
    file: FileOption = None,
    json_output: JsonOption = False,
) -> None:
    """Release a successful run's artifacts under a semantic version.

    The run must have succeeded, and conveyor.yaml must be the file it ran
    with (its `delivery:` section is recorded with the release). Exits 0 when
    the release is recorded or already was with the same content, 2 when the
    run failed, nothing matches delivery.artifacts, the version is not semver
    or is taken by other content, 3 when the store cannot be used.

    Examples:

      conveyor release create --run latest

      conveyor release create --run 42 --version 2.0.0-rc.1
    """
    plane = _plane(file)
    try:
        outcome = plane.create_release(local_pipeline(file), run, version=version)
    finally:
        plane.close()
    if json_output:
        doc = {**release_json(outcome.release), "created": outcome.created}
        doc["reasons"] = list(outcome.reasons)
        _print_json(doc)
    else:
        typer.echo(_outcome_text(outcome))


@app.command(name="list")
def list_releases(
    service: ServiceOption = None, file: FileOption = None, json_output: JsonOption = False
) -> None:
    """List the releases, highest version first."""
    plane = _plane(file)
    try:
        found = plane.list_releases(service=service)
    finally:
        plane.close()
    if json_output:
        _print_json({"releases": [release_json(r) for r in found]})
        return
    if not found:
        typer.echo("no releases yet; make one with `conveyor release create --run latest`")
        return
    from conveyor.cli.render import table
    from conveyor.core.clock import iso

    rows = [("SERVICE", "VERSION", "RUN", "COMMIT", "ARTIFACTS", "CREATED", "BY")]
    for item in found:
        rows.append(
            (
                item.service,
                item.version,
                str(item.run_id),
                (item.commit_sha or "-")[:10],
                str(len(item.artifacts)),
                iso(item.created_at) or "",
                item.created_by,
            )
        )
    typer.echo(table(rows))


@app.command()
def show(
    version: VersionArgument,
    service: ServiceOption = None,
    file: FileOption = None,
    json_output: JsonOption = False,
) -> None:
    """Show one release: its artifacts with digests, config digest, commit and run."""
    plane = _plane(file)
    try:
        found = plane.get_release(version, service=service)
    finally:
        plane.close()
    if json_output:
        _print_json(release_json(found))
    else:
        typer.echo(_release_text(found))


@app.command()
def notes(
    version: VersionArgument,
    service: ServiceOption = None,
    changelog: Annotated[
        bool,
        typer.Option(
            "--changelog", help="Every release up to VERSION, highest first, not only this one."
        ),
    ] = False,
    file: FileOption = None,
    json_output: JsonOption = False,
) -> None:
    """Print release notes as Markdown: the commits since the previous release, by kind.

    Commits are grouped as Breaking changes, Features, Fixes, Performance and
    Other by their Conventional Commit type, each with its author and short
    sha; with an origin remote on GitHub or GitLab, shas and the comparison
    with the previous release are links. `--changelog` prints the notes of
    every release up to VERSION, e.g. for a CHANGELOG.md.
    """
    from conveyor.release import notes as release_notes

    plane = _plane(file)
    try:
        if changelog:
            found = plane.changelog(version, service=service)
        else:
            found = [plane.release_notes(version, service=service)]
    finally:
        plane.close()
    if json_output:
        doc: object = release_notes.to_json(found[0])
        if changelog:
            doc = {
                "service": found[0].service,
                "releases": [release_notes.to_json(n) for n in found],
            }
        _print_json(doc)
    elif changelog:
        sys.stdout.write(release_notes.changelog_markdown(found[0].service, found))
    else:
        sys.stdout.write(release_notes.to_markdown(found[0]))


# --- rendering -----------------------------------------------------------------------


def _print_json(doc: object) -> None:
    from conveyor.cli.render import dumps

    sys.stdout.write(dumps(doc) + "\n")


def release_json(release: Release) -> dict[str, object]:
    """One Release as the JSON every `conveyor release` command prints."""
    from conveyor.core.clock import iso

    return {
        "service": release.service,
        "version": release.version,
        "project": release.project,
        "run": int(release.run_id),
        "commit": release.commit_sha,
        "config_digest": release.config_digest,
        "previous_version": release.previous_version,
        "created_at": iso(release.created_at),
        "created_by": release.created_by,
        "repository": release.repository,
        "commits": len(release.commits),
        "artifacts": [
            {"path": a.path, "digest": a.digest, "size": a.size} for a in release.artifacts
        ],
    }


def _outcome_text(outcome: ReleaseOutcome) -> str:
    release = outcome.release
    if outcome.created:
        head = f"released {release.service} {release.version} from run {release.run_id}"
    else:
        head = f"{release.service} {release.version} was already released; nothing recorded"
    lines = [head, *(f"  {reason}" for reason in outcome.reasons), _release_text(release)]
    return "\n".join(lines)


def _release_text(release: Release) -> str:
    from conveyor.cli.render import table
    from conveyor.core.clock import iso
    from conveyor.core.digest import short

    lines = [
        f"{release.service} {release.version}",
        f"  run       {release.run_id}",
        f"  commit    {release.commit_sha or '- (not made from a git commit)'}",
        f"  config    {release.config_digest}",
        f"  previous  {release.previous_version or '- (first release)'}",
        f"  created   {iso(release.created_at)} by {release.created_by}",
        "artifacts:",
    ]
    rows = [(f"  {a.path}", short(a.digest), f"{a.size:,} bytes") for a in release.artifacts]
    lines.append(table(rows))
    return "\n".join(lines)

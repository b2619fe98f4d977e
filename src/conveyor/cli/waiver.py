"""`conveyor waiver`: time-boxed, approved exceptions to one policy rule in one environment."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from conveyor.cli.pipeline import FileOption, JsonOption, local_pipeline

if TYPE_CHECKING:
    from conveyor.control.base import ControlPlane
    from conveyor.engine.waivers import WaiverStatus
    from conveyor.policy.waiver import WaiverState

app = typer.Typer(
    help=(
        "Waivers: a time-boxed, justified exception to one policy rule in one environment. "
        "Someone requests it with a reason and an expiry (at most 30d); it takes effect "
        "once a second person approves it. While active, that rule's `deny` no longer "
        "blocks promotions into that environment: the `policies` gate passes and names the "
        "waiver, and every promotion decision that relied on it is recorded as a "
        "`waiver.used` Event. Once it expires or is revoked, the rule blocks again.\n\n"
        "Who may approve, reject or revoke: someone other than the requester with the role "
        "approver, release-manager or admin in conveyor-roles.yaml (the requester may "
        "withdraw their own)."
    ),
    no_args_is_help=True,
)


def register(main: typer.Typer) -> None:
    main.add_typer(app, name="waiver")


WaiverArgument = Annotated[
    int,
    typer.Argument(help="The waiver's id, from `conveyor waiver list`.", min=1, show_default=False),
]
CommentOption = Annotated[
    str, typer.Option("--comment", "-m", help="Why; recorded with the decision.")
]


def _plane(file: Path | None) -> ControlPlane:
    from conveyor.control.select import open_control_plane

    return open_control_plane(file)


@app.command()
def create(
    rule: Annotated[
        str,
        typer.Option(
            "--rule", help="The rule to waive, by name (policies/*.yaml).", show_default=False
        ),
    ],
    env: Annotated[
        str,
        typer.Option("--env", help="The environment it is waived in.", show_default=False),
    ],
    expires: Annotated[
        str,
        typer.Option(
            "--expires",
            help="How long it lasts from now, like 48h or 7d; at most 30d.",
            show_default=False,
        ),
    ],
    reason: Annotated[
        str,
        typer.Option(
            "--reason", help="Why the rule must be waived (required).", show_default=False
        ),
    ],
    file: FileOption = None,
    json_output: JsonOption = False,
) -> None:
    """Request a waiver of one rule in one environment; it is pending until someone approves it.

    You are the requester (CONVEYOR_ACTOR, else git's user.email); you cannot
    approve your own. The expiry counts from now, so a waiver approved late
    lasts less.

    Exit codes: 0 requested; 2 an unknown rule or environment, a duration
    that is not positive or longer than 30d, or an empty reason.

    Example:

      conveyor waiver create --rule no-friday-prod --env prod --expires 48h --reason "hotfix INC-42"
    """
    from conveyor.core.durations import parse_duration
    from conveyor.core.errors import UsageError

    try:
        expires_s = parse_duration(expires)
    except ValueError as exc:
        raise UsageError(f"--expires: {exc}") from None
    plane = _plane(file)
    try:
        status = plane.create_waiver(
            local_pipeline(file), rule=rule, environment=env, expires_s=expires_s, reason=reason
        )
    finally:
        plane.close()
    _show(status, json_output)


@app.command()
def approve(
    waiver: WaiverArgument,
    comment: CommentOption = "",
    file: FileOption = None,
    json_output: JsonOption = False,
) -> None:
    """Approve a pending waiver as yourself; it takes effect at once, until it expires.

    Refused (exit 1, with the reason) when you requested it, you hold none of
    the roles approver, release-manager or admin, or it is no longer pending
    (expired, rejected, revoked, approved). Open promotions are evaluated
    again afterwards, so one the rule blocked proceeds.
    """
    _decide("approve", waiver, comment, file, json_output)


@app.command()
def reject(
    waiver: WaiverArgument,
    comment: CommentOption = "",
    file: FileOption = None,
    json_output: JsonOption = False,
) -> None:
    """Reject a pending waiver: it never takes effect. Its requester may withdraw it this way."""
    _decide("reject", waiver, comment, file, json_output)


@app.command()
def revoke(
    waiver: WaiverArgument,
    comment: CommentOption = "",
    file: FileOption = None,
    json_output: JsonOption = False,
) -> None:
    """End a pending or active waiver now; the rule blocks promotions evaluated from now on."""
    _decide("revoke", waiver, comment, file, json_output)


def _decide(
    verb: Literal["approve", "reject", "revoke"],
    waiver: int,
    comment: str,
    file: Path | None,
    json_output: bool,
) -> None:
    """One person's decision on a waiver, through the control plane; the waiver afterwards."""
    plane = _plane(file)
    try:
        decide = {
            "approve": plane.approve_waiver,
            "reject": plane.reject_waiver,
            "revoke": plane.revoke_waiver,
        }[verb]
        status = decide(waiver, comment=comment)
    finally:
        plane.close()
    _show(status, json_output)


@app.command(name="list")
def list_waivers(
    env: Annotated[str | None, typer.Option("--env", help="Only this environment.")] = None,
    rule: Annotated[str | None, typer.Option("--rule", help="Only this rule.")] = None,
    state: Annotated[
        str | None,
        typer.Option(
            "--state",
            help="Only waivers in this state: pending, active, expired, rejected, revoked.",
        ),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many.")] = 100,
    file: FileOption = None,
    json_output: JsonOption = False,
) -> None:
    """List waivers, newest first, with their state now."""
    from conveyor.cli.waiver_view import waiver_json, waivers_table

    wanted = _state(state)
    plane = _plane(file)
    try:
        found = plane.list_waivers(environment=env, rule=rule, state=wanted, limit=limit)
    finally:
        plane.close()
    if json_output:
        _print_json({"waivers": [waiver_json(s) for s in found]})
    elif not found:
        typer.echo(
            "no waivers; request one with "
            "`conveyor waiver create --rule R --env ENV --expires 48h --reason ...`"
        )
    else:
        typer.echo(waivers_table(found))


@app.command()
def show(waiver: WaiverArgument, file: FileOption = None, json_output: JsonOption = False) -> None:
    """Show one waiver: its rule, environment, reason, state, decision and expiry."""
    plane = _plane(file)
    try:
        status = plane.get_waiver(waiver)
    finally:
        plane.close()
    _show(status, json_output)


def _state(text: str | None) -> WaiverState | None:
    from conveyor.core.errors import UsageError
    from conveyor.policy.waiver import WAIVER_STATES
    from conveyor.spec.suggest import did_you_mean, one_of

    if text is None:
        return None
    for state in WAIVER_STATES:
        if state == text:
            return state
    hint = did_you_mean(text, WAIVER_STATES) or f"the states are {one_of(WAIVER_STATES)}"
    raise UsageError(f"--state: '{text}' is not a waiver state; {hint}")


def _show(status: WaiverStatus, json_output: bool) -> None:
    from conveyor.cli.waiver_view import waiver_json, waiver_text

    if json_output:
        _print_json(waiver_json(status))
    else:
        typer.echo(waiver_text(status))


def _print_json(doc: object) -> None:
    from conveyor.cli.render import dumps

    sys.stdout.write(dumps(doc) + "\n")

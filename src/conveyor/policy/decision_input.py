"""The decision input: what a policy rule sees about one Promotion (format version 1).

These frozen classes are the one definition of the input: the JSON Schema, the
table in docs/policy.md and the names a rule may use are all derived from them
(`conveyor.policy.schema`). Every field has a neutral default, so an input can
be built from the parts a test cares about.

Time comes in as a value: `time_facts(instant)` describes an instant the
caller took from its Clock, and each rule sees it in its own zone.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from conveyor.core.values import frozen, replace

INPUT_VERSION = 1

Weekday = Literal["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
DeploymentOutcome = Literal["succeeded", "failed", "rolled_back"]
WEEKDAYS: tuple[Weekday, ...] = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@frozen
class Fact:
    """What a field means, and the limits of its values, for the schema and the docs."""

    doc: str
    format: Literal["date-time", "date"] | None = None
    minimum: int | None = None
    maximum: int | None = None


@frozen
class Artifact:
    """One file of the Release, by content."""

    path: Annotated[str, Fact("The file's path, like `dist/app-1.2.0.whl`.")] = ""
    digest: Annotated[str, Fact("Its content digest, `sha256:<hex>`.")] = ""


@frozen
class ReleaseTests:
    """Test counts from the Run that built the Release."""

    passed: Annotated[int, Fact("Tests that passed.", minimum=0)] = 0
    failed: Annotated[int, Fact("Tests that failed (or errored).", minimum=0)] = 0
    skipped: Annotated[int, Fact("Tests that were skipped.", minimum=0)] = 0


@frozen
class ReleaseChange:
    """How big the change since the Release deployed before it is."""

    files: Annotated[int, Fact("Files changed.", minimum=0)] = 0
    lines_added: Annotated[int, Fact("Lines added.", minimum=0)] = 0
    lines_removed: Annotated[int, Fact("Lines removed.", minimum=0)] = 0
    commits: Annotated[int, Fact("Commits included.", minimum=0)] = 0


@frozen
class ReleaseFacts:
    """The Release being promoted."""

    service: Annotated[str, Fact("The service's name, like `payments-api`.")] = ""
    version: Annotated[str, Fact("The release's version, like `1.4.0`.")] = ""
    commit: Annotated[str, Fact("The source commit it was built from.")] = ""
    artifacts: Annotated[tuple[Artifact, ...], Fact("The files it is made of.")] = ()
    tests: Annotated[ReleaseTests, Fact("Test counts of the Run that built it.")] = ReleaseTests()
    change: Annotated[ReleaseChange, Fact("Size of the change it brings.")] = ReleaseChange()


@frozen
class EnvironmentFacts:
    """The Environment the Release is promoted into."""

    name: Annotated[str, Fact("Its name, like `prod`.")] = ""
    previous: Annotated[
        str | None,
        Fact("The environment before it in promotion order (its `after`), or null."),
    ] = None


@frozen
class Requester:
    """Who asked for the Promotion."""

    name: Annotated[str, Fact("Who it is, like `dev@example.com`.")] = ""
    roles: Annotated[tuple[str, ...], Fact("Their roles, like `['developer']`.")] = ()


@frozen
class Approval:
    """One recorded approval of the Promotion."""

    by: Annotated[str, Fact("Who approved.")] = ""
    role: Annotated[str, Fact("The role they approved in.")] = ""
    at: Annotated[str, Fact("When they approved.", format="date-time")] = (
        "1970-01-01T00:00:00+00:00"
    )


@frozen
class TimeFacts:
    """When the decision is made, in the zone of the rule that reads it."""

    iso: Annotated[str, Fact("The instant, with the zone's offset.", format="date-time")]
    weekday: Annotated[Weekday, Fact("The local day of the week.")]
    hour: Annotated[int, Fact("The local hour, 0 to 23.", minimum=0, maximum=23)]
    minute: Annotated[int, Fact("The local minute, 0 to 59.", minimum=0, maximum=59)]
    date: Annotated[str, Fact("The local date.", format="date")]
    zone: Annotated[str, Fact("The IANA zone these are local to, like `Europe/Berlin`.")]

    @property
    def instant(self) -> datetime:
        """The moment itself, timezone-aware."""
        return datetime.fromisoformat(self.iso)

    def in_zone(self, zone: str) -> TimeFacts:
        """The same instant described in `zone`."""
        return self if zone == self.zone else time_facts(self.instant, zone)


def time_facts(instant: datetime, zone: str = "UTC") -> TimeFacts:
    """Describe a timezone-aware `instant` in `zone` (an IANA name)."""
    if instant.tzinfo is None:
        raise ValueError("an instant needs a time zone or an offset")
    local = instant.astimezone(UTC if zone == "UTC" else ZoneInfo(zone))
    return TimeFacts(
        iso=local.isoformat(timespec="seconds"),
        weekday=WEEKDAYS[local.weekday()],
        hour=local.hour,
        minute=local.minute,
        date=local.date().isoformat(),
        zone=zone,
    )


EPOCH = time_facts(datetime(1970, 1, 1, tzinfo=UTC))


@frozen
class PastDeployment:
    """One earlier Deployment of the service, in any environment."""

    environment: Annotated[str, Fact("The environment it went to.")] = ""
    version: Annotated[str, Fact("The release version it deployed.")] = ""
    outcome: Annotated[DeploymentOutcome, Fact("How it ended.")] = "succeeded"
    at: Annotated[str, Fact("When it ended.", format="date-time")] = "1970-01-01T00:00:00+00:00"


@frozen
class DecisionInput:
    """Everything a rule can read; missing parts are neutral (empty, zero, the epoch)."""

    release: Annotated[ReleaseFacts, Fact("The Release being promoted.")] = ReleaseFacts()
    environment: Annotated[EnvironmentFacts, Fact("The Environment it goes to.")] = (
        EnvironmentFacts()
    )
    requester: Annotated[Requester, Fact("Who asked for the Promotion.")] = Requester()
    approvals: Annotated[tuple[Approval, ...], Fact("Approvals recorded so far.")] = ()
    time: Annotated[TimeFacts, Fact("When the decision is made, in the rule's zone.")] = EPOCH
    previous_deployments: Annotated[
        tuple[PastDeployment, ...], Fact("Earlier Deployments of the service, newest first.")
    ] = ()

    def in_zone(self, zone: str) -> DecisionInput:
        """The same input with `time` described in `zone`."""
        return replace(self, time=self.time.in_zone(zone))

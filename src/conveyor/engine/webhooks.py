"""The Webhook service: a GitHub or GitLab delivery in, a Run started (or a reason) out.

The HTTP routes hand over the headers and the raw body. The service finds
the project by the payload's repository, checks the signature (GitHub's
HMAC, GitLab's token) against the project's webhook secret in constant time,
refuses a delivery id it has already accepted, and hands the Trigger to the
`start_run` collaborator. Every accepted or refused delivery is an Event
(`webhook.received`, `webhook.refused`) naming the delivery, never the body.
Deliveries are deduplicated by looking their id up among those Events,
inside a write transaction that locks the project's row, so no table of its
own is needed. Outcomes are values; only a malformed payload is an error
(`PayloadError`, bad input), for the route to answer 400.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from conveyor.audit.chain import NewEvent
from conveyor.core.clock import Clock
from conveyor.core.values import frozen, replace
from conveyor.engine.projects import ProjectService
from conveyor.engine.secrets import Cipher, webhook_context
from conveyor.store import events as event_log
from conveyor.store import projects as project_store
from conveyor.store.db import Database, Transaction
from conveyor.triggers import github, gitlab
from conveyor.triggers.model import Headers, Ignored, Parsed, Payload, PayloadError, Trigger
from conveyor.triggers.project import Project
from conveyor.triggers.signature import GITHUB_SIGNATURE, GITLAB_TOKEN, check_github, check_gitlab

ACTOR = "webhook"
StartRun = Callable[[Trigger], str]


@frozen
class Started:
    """The delivery started a Run."""

    trigger: Trigger
    run_id: str


@frozen
class Duplicate:
    """The delivery was accepted before; it starts nothing again."""

    delivery: str


@frozen
class Refused:
    """The delivery is not trusted (the route answers 401; 404 for `unknown_project`)."""

    reason: str
    code: str


Outcome = Started | Ignored | Duplicate | Refused


@frozen
class _Delivery:
    """One webhook delivery as received, before its signature or token is checked."""

    provider: str
    event: str
    delivery: str
    repository: str
    payload: Payload
    credential: str | None

    @property
    def event_data(self) -> dict[str, object]:
        return {
            "provider": self.provider,
            "event": self.event,
            "delivery": self.delivery,
            "repository": self.repository,
        }


class WebhookService:
    """Judges webhook deliveries and starts Runs for the ones that are trusted and new."""

    def __init__(
        self,
        *,
        db: Database,
        clock: Clock,
        environ: Mapping[str, str],
        projects: ProjectService,
        start_run: StartRun,
    ) -> None:
        self._db = db
        self._clock = clock
        self._environ = environ
        self._projects = projects
        self._start_run = start_run

    def github(self, headers: Mapping[str, str], body: bytes) -> Outcome:
        """Handle one delivery to the GitHub route."""
        found = Headers(headers)
        payload = Payload.decode(body, source="GitHub")
        delivery = _Delivery(
            provider=github.PROVIDER,
            event=_required(found, github.EVENT_HEADER),
            delivery=_required(found, github.DELIVERY_HEADER),
            repository=github.github_repository(payload),
            payload=payload,
            credential=found.get(GITHUB_SIGNATURE),
        )
        return self._handle(
            delivery,
            check=lambda secret: check_github(secret, body, delivery.credential),
            parse=lambda: github.parse_github(delivery.event, delivery.delivery, payload),
        )

    def gitlab(self, headers: Mapping[str, str], body: bytes) -> Outcome:
        """Handle one delivery to the GitLab route."""
        found = Headers(headers)
        payload = Payload.decode(body, source="GitLab")
        delivery = _Delivery(
            provider=gitlab.PROVIDER,
            event=_required(found, gitlab.EVENT_HEADER),
            delivery=gitlab.gitlab_delivery(found) or "",
            repository=gitlab.gitlab_repository(payload),
            payload=payload,
            credential=found.get(GITLAB_TOKEN),
        )
        return self._handle(
            delivery,
            check=lambda secret: check_gitlab(secret, delivery.credential),
            parse=lambda: gitlab.parse_gitlab(delivery.event, delivery.delivery, payload),
        )

    def _handle(
        self,
        delivery: _Delivery,
        *,
        check: Callable[[str], str | None],
        parse: Callable[[], Parsed],
    ) -> Outcome:
        project = self._projects.find_by_repository(delivery.repository)
        if project is None:
            reason = f"no project has the repository {delivery.repository}"
            return self._refuse(delivery, f"webhook/{delivery.provider}", reason, "unknown_project")
        subject = _subject(project, delivery)
        with self._db.write() as tx:
            sealed = project_store.lock(tx, project.name)
            if sealed is None:
                reason = f"project {project.name} has no webhook secret, so nothing can be trusted"
                return self._refused_in(tx, delivery, subject, reason, "no_webhook_secret")
            if (problem := check(self._webhook_secret(project, sealed))) is not None:
                return self._refused_in(tx, delivery, subject, problem, "bad_signature")
            if delivery.delivery and _accepted(project_store.delivery_kinds(tx, subject)):
                return Duplicate(delivery.delivery)
            parsed = parse()
            if isinstance(parsed, Trigger):
                parsed = replace(parsed, project=project.name)
            self._record(tx, "webhook.received", subject, _received_data(delivery, parsed))
        if isinstance(parsed, Ignored):
            return parsed
        return self._start(parsed, subject)

    def _webhook_secret(self, project: Project, sealed: str) -> str:
        cipher = Cipher.from_environ(
            self._environ, needed_for=f"checking webhooks of project {project.name}"
        )
        return cipher.open(
            sealed,
            context=webhook_context(project.name),
            what=f"the webhook secret of project {project.name}",
        )

    def _start(self, trigger: Trigger, subject: str) -> Started:
        try:
            run_id = self._start_run(trigger)
        except Exception as exc:
            # A delivery whose Run never started may be delivered again and accepted.
            with self._db.write() as tx:
                self._record(tx, "webhook.failed", subject, {"error": str(exc)})
            raise
        with self._db.write() as tx:
            self._record(tx, "webhook.started", subject, {"run": run_id})
        return Started(trigger, run_id)

    def _refuse(self, delivery: _Delivery, subject: str, reason: str, code: str) -> Refused:
        with self._db.write() as tx:
            return self._refused_in(tx, delivery, subject, reason, code)

    def _refused_in(
        self, tx: Transaction, delivery: _Delivery, subject: str, reason: str, code: str
    ) -> Refused:
        data = {**delivery.event_data, "reason": reason, "code": code}
        self._record(tx, "webhook.refused", subject, data)
        return Refused(reason, code)

    def _record(self, tx: Transaction, kind: str, subject: str, data: dict[str, object]) -> None:
        event_log.append(tx, [NewEvent(kind, subject, ACTOR, self._clock.now(), data)])


def _required(headers: Headers, name: str) -> str:
    value = headers.get(name)
    if not value:
        raise PayloadError(f"the delivery has no {name} header")
    return value


def _subject(project: Project, delivery: _Delivery) -> str:
    suffix = f"/{delivery.delivery}" if delivery.delivery else ""
    return f"{project.subject}/webhook/{delivery.provider}{suffix}"


def _accepted(kinds: list[str]) -> bool:
    """Whether a delivery stands accepted: received, and not failed to start since."""
    relevant = [k for k in kinds if k in {"webhook.received", "webhook.failed"}]
    return bool(relevant) and relevant[-1] == "webhook.received"


def _received_data(delivery: _Delivery, parsed: Parsed) -> dict[str, object]:
    data = delivery.event_data
    if isinstance(parsed, Ignored):
        return {**data, "ignored": parsed.reason}
    return {**data, "branch": parsed.branch, "commit": parsed.commit, "sender": parsed.sender}

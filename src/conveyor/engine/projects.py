"""The Project service: repositories the control plane builds, found again by webhooks."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import PurePosixPath

from conveyor.audit.chain import NewEvent
from conveyor.core.clock import Clock
from conveyor.core.errors import Conflict, NotFound, UsageError
from conveyor.engine.secrets import Cipher, webhook_context
from conveyor.store import events as event_log
from conveyor.store import projects as project_store
from conveyor.store.db import Database, Transaction
from conveyor.triggers.project import Project, canonical_repository, check_project_name

DEFAULT_SPEC_PATH = "conveyor.yaml"
DEFAULT_BRANCH = "main"
_BRANCH = re.compile(r"[^\s~^:?*\[\\]+")


class ProjectService:
    """Create, read, find by repository and delete projects; changes are Events with actor."""

    def __init__(self, *, db: Database, clock: Clock, environ: Mapping[str, str]) -> None:
        self._db = db
        self._clock = clock
        self._environ = environ

    def create(
        self,
        name: str,
        repository: str,
        *,
        actor: str,
        spec_path: str = DEFAULT_SPEC_PATH,
        default_branch: str = DEFAULT_BRANCH,
        webhook_secret: str | None = None,
    ) -> Project:
        """Record a project; its webhook secret is stored sealed like a secret."""
        check_project_name(name)
        canonical = canonical_repository(repository)
        _check_spec_path(spec_path)
        _check_branch(default_branch)
        sealed = self._seal_webhook_secret(name, webhook_secret)
        now = self._clock.now()
        with self._db.write() as tx:
            _check_repository_free(tx, canonical)
            project = project_store.insert(
                tx,
                name=name,
                repository=repository.strip(),
                spec_path=spec_path,
                default_branch=default_branch,
                webhook_secret=sealed,
                actor=actor,
                now=now,
            )
            if project is None:
                raise Conflict(f"project {name} already exists; choose another name or delete it")
            data = {
                "name": name,
                "repository": canonical,
                "spec_path": spec_path,
                "default_branch": default_branch,
                "webhook_secret": sealed is not None,
            }
            event_log.append(tx, [NewEvent("project.created", project.subject, actor, now, data)])
        return project

    def get(self, name: str) -> Project:
        """The project called `name`; NotFound names the command that lists them."""
        found = project_store.get(self._db, check_project_name(name))
        if found is None:
            raise NotFound(f"there is no project {name}")
        return found

    def find_by_repository(self, url: str) -> Project | None:
        """The project whose repository is `url` in any of its forms (https, ssh, scp-like)."""
        wanted = canonical_repository(url)
        for project in project_store.list_projects(self._db):
            if canonical_repository(project.repository) == wanted:
                return project
        return None

    def list_projects(self) -> list[Project]:
        return project_store.list_projects(self._db)

    def delete(self, name: str, *, actor: str) -> None:
        """Remove a project; its Runs and Events stay, as history does."""
        check_project_name(name)
        now = self._clock.now()
        with self._db.write() as tx:
            if not project_store.delete(tx, name):
                raise NotFound(f"there is no project {name}")
            event = NewEvent("project.deleted", f"project/{name}", actor, now, {"name": name})
            event_log.append(tx, [event])

    def _seal_webhook_secret(self, name: str, secret: str | None) -> str | None:
        if secret is None:
            return None
        if len(secret.strip()) < 16:
            raise UsageError(
                f"the webhook secret of project {name} is shorter than 16 characters; "
                "use a long random value (for example `openssl rand -hex 32`)"
            )
        cipher = Cipher.from_environ(
            self._environ, needed_for=f"storing the webhook secret of project {name}"
        )
        return cipher.seal(secret, context=webhook_context(name)).text


def _check_repository_free(tx: Transaction, canonical: str) -> None:
    for other in project_store.list_in(tx):
        if canonical_repository(other.repository) == canonical:
            raise Conflict(
                f"repository {canonical} already belongs to project {other.name}; "
                "webhooks must find one project per repository"
            )


def _check_spec_path(spec_path: str) -> None:
    path = PurePosixPath(spec_path)
    if not spec_path or path.is_absolute() or ".." in path.parts or "\\" in spec_path:
        raise UsageError(
            f"spec path '{spec_path}' must be a path inside the repository, such as "
            f"{DEFAULT_SPEC_PATH} or services/api/{DEFAULT_SPEC_PATH}"
        )


def _check_branch(branch: str) -> None:
    if not _BRANCH.fullmatch(branch) or branch.startswith(("-", "/")) or ".." in branch:
        raise UsageError(f"default branch '{branch}' is not a branch name; for example main")

"""The words of validation messages: what a path names, what it expects, what to do."""

from __future__ import annotations

import datetime
from collections.abc import Sequence

from conveyor.spec.source import NodePath
from conveyor.spec.suggest import KEY_SYNONYMS, did_you_mean, one_of

_VALUE = "text, a number or true/false"
_GLOBS = "a glob or a list of globs"
_ENV = "a mapping of variable names to values"
_CONCURRENCY = "a group name or a mapping like {group: deploy, cancel_in_progress: true}"
_GROUP = "a group name like 'deploy-prod'"

# What each place in the file holds; `*` is any name, `#` any list index.
_EXPECTED = {
    "": "a mapping with 'version: 1' and 'jobs:'",
    "version": "the number 1",
    "env": _ENV,
    "env.*": _VALUE,
    "secrets": "a list of environment variable names",
    "secrets.#": "an environment variable name",
    "jobs": "a mapping of job names to jobs",
    "jobs.*": "a mapping with at least 'run'",
    "jobs.*.run": "the shell script to run, as text",
    "jobs.*.needs": "a job name or a list of job names",
    "jobs.*.needs.#": "a job name",
    "jobs.*.env": _ENV,
    "jobs.*.env.*": _VALUE,
    "jobs.*.workdir": "a relative path",
    "jobs.*.inputs": _GLOBS,
    "jobs.*.inputs.#": "a glob",
    "jobs.*.outputs": _GLOBS,
    "jobs.*.outputs.#": "a glob",
    "jobs.*.reports": "a mapping like {junit: reports/*.xml}",
    "jobs.*.reports.junit": _GLOBS,
    "jobs.*.reports.junit.#": "a glob",
    "jobs.*.timeout": "a duration like '10m'",
    "jobs.*.retry": "a number of retries or a mapping like {max: 2, backoff: 5s}",
    "jobs.*.retry.max": "a whole number from 0 to 10",
    "jobs.*.retry.backoff": "a duration like '5s'",
    "jobs.*.allow_failure": "true or false",
    "jobs.*.cache": "true or false",
    "jobs.*.matrix": "a mapping of axis names to lists of values",
    "jobs.*.matrix.*": "a list of values",
    "jobs.*.matrix.*.#": _VALUE,
    "jobs.*.matrix.exclude": "a list of mappings of axis names to values",
    "jobs.*.matrix.exclude.#": "a mapping of axis names to values",
    "jobs.*.matrix.exclude.#.*": _VALUE,
    "jobs.*.if": "a CEL condition as text, like branch == 'main'",
    "jobs.*.runs_on": "a label or a list of labels, like [linux, docker]",
    "jobs.*.runs_on.#": "a label like 'linux'",
    "jobs.*.concurrency": _CONCURRENCY,
    "jobs.*.concurrency.group": _GROUP,
    "jobs.*.concurrency.cancel_in_progress": "true or false",
    "concurrency": _CONCURRENCY,
    "concurrency.group": _GROUP,
    "concurrency.cancel_in_progress": "true or false",
    "delivery": "a mapping with 'service', 'artifacts', 'run' and 'environments'",
    "delivery.service": "a name of lowercase letters, digits and '-'",
    "delivery.artifacts": _GLOBS,
    "delivery.artifacts.#": "a glob",
    "delivery.run": "the command that starts an instance, as text",
    "delivery.health": "a mapping like {http: /healthz, timeout: 2s}",
    "delivery.health.http": "an HTTP path like /healthz",
    "delivery.health.timeout": "a duration like '2s'",
    "delivery.health.within": "a duration like '30s'",
    "delivery.environments": "a list of environments, in promotion order",
    "delivery.environments.#": "a mapping with at least 'name'",
    "delivery.environments.#.name": "a name of lowercase letters, digits and '-'",
    "delivery.environments.#.auto": "true or false",
    "delivery.environments.#.instances": "a whole number from 1 to 20",
    "delivery.environments.#.strategy": "'rolling'",
    "delivery.environments.#.change_record": "true or false",
    "delivery.environments.#.requires": "a mapping of requirements like {after: staging}",
    "delivery.environments.#.requires.after": "the name of an earlier environment",
    "delivery.environments.#.requires.soak": "a duration like '10m'",
    "delivery.environments.#.requires.approvals": "a mapping like {count: 1, roles: [approver]}",
    "delivery.environments.#.requires.approvals.count": "a whole number, at least 1",
    "delivery.environments.#.requires.approvals.roles": "a list of roles",
    "delivery.environments.#.requires.approvals.roles.#": "one of viewer, developer, "
    "approver, release-manager, admin",
    "delivery.environments.#.requires.window": "a window like 'Mon-Thu 08:00-17:00 "
    "Europe/Berlin', or a list of them",
    "delivery.environments.#.requires.window.#": "a window like 'Mon-Thu 08:00-17:00 "
    "Europe/Berlin'",
    "delivery.environments.#.requires.freeze": "a list of freezes like "
    "{from: 2026-12-20, until: 2027-01-04, reason: holidays}",
    "delivery.environments.#.requires.freeze.#": "a mapping with 'from', 'until' and 'reason'",
    "delivery.environments.#.requires.freeze.#.from": "a date like 2026-12-20",
    "delivery.environments.#.requires.freeze.#.until": "a date like 2027-01-04",
    "delivery.environments.#.requires.freeze.#.reason": "text saying why",
    "delivery.environments.#.requires.policies": "a list of policy rule names",
    "delivery.environments.#.requires.policies.#": "a policy rule name",
    "delivery.environments.#.requires.signed": "true or false",
}

_MISSING_HINTS = {
    "version": "add 'version: 1' at the top of the file",
    "jobs": "add 'jobs:' with at least one job, like jobs: {build: {run: make}}",
    "jobs.*.run": "add 'run:' with the commands to run",
    "jobs.*.retry.max": "write retry: {max: 2}, or just retry: 2",
    "jobs.*.concurrency.group": "write concurrency: {group: deploy}, or just concurrency: deploy",
    "concurrency.group": "write concurrency: {group: deploy}, or just concurrency: deploy",
    "delivery.service": "add 'service:' with the service's name, like payments-api",
    "delivery.artifacts": "add 'artifacts:' with globs over the run's outputs, like dist/*.whl",
    "delivery.run": "add 'run:' with the command that starts an instance on $PORT",
    "delivery.environments": "add 'environments:' with at least one, like [{name: dev}]",
    "delivery.environments.#.name": "add 'name:', like name: staging",
}

# Places that hold text only, where an unquoted number or `yes` is a slip.
_TEXTUAL = {
    "secrets.#",
    "jobs.*.run",
    "jobs.*.needs",
    "jobs.*.needs.#",
    "jobs.*.workdir",
    "jobs.*.inputs",
    "jobs.*.inputs.#",
    "jobs.*.outputs",
    "jobs.*.outputs.#",
    "jobs.*.reports.junit",
    "jobs.*.reports.junit.#",
    "jobs.*.if",
    "jobs.*.runs_on",
    "jobs.*.runs_on.#",
    "jobs.*.concurrency.group",
    "concurrency.group",
    "delivery.service",
    "delivery.run",
    "delivery.artifacts.#",
    "delivery.environments.#.name",
    "delivery.environments.#.requires.after",
    "delivery.environments.#.requires.policies.#",
}

# After these, a key is a name the user chose, not one of ours.
_NAMED = {
    ("jobs",),
    ("env",),
    ("jobs", "*", "env"),
    ("jobs", "*", "matrix"),
    ("jobs", "*", "matrix", "exclude", "#"),
}


def pattern(path: NodePath) -> str:
    """`jobs.*.needs.#` for `("jobs", "test", "needs", 0)`."""
    out: list[str] = []
    for part in path:
        if isinstance(part, int):
            out.append("#")
        elif tuple(out) in _NAMED and not (out[-1] == "matrix" and part == "exclude"):
            out.append("*")
        else:
            out.append(part)
    return ".".join(out)


def subject(path: NodePath) -> str:
    """What a path names in a message: `the file`, `job 'test'`, `'needs[0]' of job 'test'`."""
    if not path:
        return "the file"
    if path[0] == "jobs" and len(path) >= 2:
        job = f"job '{path[1]}'"
        return f"'{_dotted(path[2:])}' of {job}" if len(path) > 2 else job
    return f"'{_dotted(path)}'"


def _dotted(parts: Sequence[str | int]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def expected(path: NodePath) -> str:
    """What belongs at `path`, in words."""
    return _EXPECTED.get(pattern(path), "something else")


def missing_hint(path: NodePath) -> str | None:
    """What to add when the key at `path` is missing."""
    return _MISSING_HINTS.get(pattern(path))


def hint_for(path: NodePath, found: object) -> str | None:
    """What to do when `found` is not what `path` expects."""
    if found is None:
        return "write a value after the ':', or remove the key"
    if pattern(path) == "jobs.*.run" and isinstance(found, list):
        return "write the commands as one script: 'run: |' and then one command per line"
    if isinstance(found, datetime.date):
        return "put it in quotes to keep it as text"
    wants_text = pattern(path) in _TEXTUAL
    if wants_text and isinstance(found, int | float) and not isinstance(found, bool):
        return "put it in quotes to make it text"
    if wants_text and isinstance(found, bool):
        return "put it in quotes: YAML reads yes/no/on/off/true/false as true or false"
    return None


def unknown_key_hint(
    parent: NodePath, key: str, found: object, choices: Sequence[str]
) -> str | None:
    """A did-you-mean for an unknown key, or what the indentation probably meant."""
    looks_like_job = isinstance(found, dict) and "run" in found
    if looks_like_job and not parent:
        return f"jobs go under 'jobs:'; indent '{key}' below it"
    if looks_like_job:
        return f"'{key}' looks like a job nested in another; check the indentation"
    suggestion = did_you_mean(key, choices, KEY_SYNONYMS)
    if suggestion is None and choices:
        return f"expected {one_of(choices)}"
    return suggestion

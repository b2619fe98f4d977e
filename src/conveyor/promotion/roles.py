"""The roles map: who holds which roles in the embedded control plane (pure).

Read from `conveyor-roles.yaml` next to conveyor.yaml:

```yaml
version: 1
roles:
  lead@example.com: [approver]
  rm@example.com: [release-manager, approver]
  ops@example.com: admin        # one role may be written without a list
```

Names are compared trimmed and without regard to case (emails ignore case).
Someone the map does not name holds no roles. Every problem in the file is
reported at once, located, with a did-you-mean for misspelt roles and keys.
"""

from __future__ import annotations

from collections.abc import Mapping

from conveyor.core.errors import SpecError
from conveyor.core.values import field, frozen
from conveyor.policy.files import FileCheck
from conveyor.promotion.model import identity
from conveyor.spec.delivery import ROLES
from conveyor.spec.source import describe, read_yaml
from conveyor.spec.suggest import did_you_mean, one_of

SHAPE = "a mapping with 'version: 1' and 'roles:'"
KEYS = ("version", "roles")
_SYNONYMS = {"people": "roles", "users": "roles", "members": "roles", "actors": "roles"}


@frozen
class RoleMap:
    """Each person's roles, by their compared identity."""

    roles: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def of(self, name: str) -> tuple[str, ...]:
        """The roles of `name` (none when the map does not name them)."""
        return self.roles.get(identity(name), ())


def read_roles(data: bytes, file: str) -> RoleMap:
    """Check a roles file given as bytes; SpecError with every issue in it."""
    check = FileCheck(read_yaml(data, file, shape=SHAPE))
    check.version()
    top = check.mapping((), check.document.data, KEYS, _SYNONYMS) or {}
    found: dict[str, tuple[str, ...]] = {}
    if check.lacks(top, "roles", KEYS, _SYNONYMS):
        check.add((), "the file has no 'roles'", "map each person to their roles under 'roles:'")
    elif isinstance(people := top.get("roles"), dict):
        found = _people(check, people)
    elif "roles" in top:
        check.add(
            ("roles",), f"'roles' must be a mapping of people to roles, found {describe(people)}"
        )
    if check.issues:
        raise SpecError(check.issues)
    return RoleMap(found)


def _people(check: FileCheck, people: dict[str, object]) -> dict[str, tuple[str, ...]]:
    found: dict[str, tuple[str, ...]] = {}
    first: dict[str, str] = {}
    for name, value in people.items():
        key = identity(name)
        if not key:
            check.add(("roles", name), "a person's name is empty", key=True)
            continue
        if key in first:
            message = f"'{name}' is listed twice (also as '{first[key]}'; case does not count)"
            check.add(("roles", name), message, "merge their roles into one entry", key=True)
            continue
        first[key] = name
        found[key] = _roles(check, ("roles", name), value)
    return found


def _roles(check: FileCheck, path: tuple[str, str], value: object) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list):
        check.add(path, f"roles must be a role or a list of roles, found {describe(value)}")
        return ()
    roles: list[str] = []
    for index, role in enumerate(items):
        where = path if isinstance(value, str) else (*path, index)
        if not isinstance(role, str) or role not in ROLES:
            shown = f"'{role}'" if isinstance(role, str) else describe(role)
            hint = (did_you_mean(role, ROLES) if isinstance(role, str) else None) or (
                f"the roles are {one_of(ROLES)}"
            )
            check.add(where, f"{shown} is not a role", hint)
            continue
        roles.append(role)
    return tuple(dict.fromkeys(roles))

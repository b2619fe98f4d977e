"""The secrets a claimed remote job declares, read when a runner claims it and never stored.

A submission stores the names of its Pipeline's `secrets:` only. When a runner
claims one of its JobRuns, the dispatch service reads their values through a
`SecretResolver` (the project's stored secret, then the global one) and hands
them to the runner in the Claim alone; a secret stored nowhere is unset.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from conveyor.core.values import replace
from conveyor.engine.dispatch_rules import Claim
from conveyor.engine.secrets import StoredSecrets
from conveyor.store.db import Database

# The values of the secrets `names` stored for `project` (or globally); absent when stored nowhere.
SecretResolver = Callable[[str, Sequence[str]], Mapping[str, str]]


def stored_secrets(db: Database, environ: Mapping[str, str]) -> SecretResolver:
    """A SecretResolver reading the secret store, with the key from `environ`."""
    return lambda project, names: StoredSecrets(lambda: db, project=project, environ=environ)(names)


def with_secrets(
    claim: Claim, resolver: SecretResolver | None, project: str, names: Sequence[str]
) -> Claim:
    """The claim with the values of `names`, and those stored nowhere listed as unset.

    Raises what the resolver raises (a ConveyorError naming the secret and the
    key, never a value) when a stored secret cannot be opened.
    """
    found = dict(resolver(project, names)) if resolver is not None else {}
    values = {name: found[name] for name in names if name in found}
    unset = tuple(name for name in names if name not in found)
    return replace(claim, secrets=values, unset_secrets=unset)

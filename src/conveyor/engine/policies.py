"""A workspace's policy rules and their tests: where they live, and which apply to an environment.

Rule files are `policies/*.yaml` next to conveyor.yaml, test cases
`policies/tests/*.yaml`. Files are named in messages relative to the current
directory, as editors and terminals link them.
"""

from __future__ import annotations

import os
from pathlib import Path

from conveyor.core.errors import UsageError
from conveyor.core.values import replace
from conveyor.policy.cases import Case, load_cases
from conveyor.policy.decision_input import DecisionInput, EnvironmentFacts
from conveyor.policy.loader import load_rules
from conveyor.policy.model import Rule
from conveyor.spec.delivery import Delivery
from conveyor.spec.suggest import did_you_mean, one_of

POLICY_DIR = "policies"
TESTS_DIR = "tests"


def rule_files(root: Path) -> list[Path]:
    """The rule files of the workspace at `root`, in name order."""
    return _yaml_files(root / POLICY_DIR)


def case_files(root: Path) -> list[Path]:
    """The policy test files of the workspace at `root`, in name order."""
    return _yaml_files(root / POLICY_DIR / TESTS_DIR)


def load_workspace_rules(root: Path) -> tuple[Rule, ...]:
    """Every rule of the workspace; SpecError with every issue in every file."""
    return load_rules(rule_files(root))


def load_workspace_cases(root: Path, rules: tuple[Rule, ...]) -> tuple[Case, ...]:
    """Every policy test case of the workspace, checked against `rules`."""
    return load_cases(case_files(root), rules)


def for_environment(
    facts: DecisionInput, delivery: Delivery | None, name: str
) -> tuple[DecisionInput, tuple[str, ...]]:
    """The input as a promotion into environment `name` sees it, and the rules it requires."""
    if delivery is None:
        raise UsageError(f"conveyor.yaml has no 'delivery:' section, so no environment '{name}'")
    if name not in delivery.names:
        hint = (
            did_you_mean(name, delivery.names) or f"the environments are {one_of(delivery.names)}"
        )
        raise UsageError(f"conveyor.yaml has no environment '{name}'; {hint}")
    environment = delivery.environment(name)
    given = facts.environment
    if given.name and given.name != name:
        raise UsageError(
            f"the input's environment.name is '{given.name}', but --env names '{name}'; "
            "leave one of them out"
        )
    previous = given.previous if given.name else environment.requires.after
    chosen = replace(facts, environment=EnvironmentFacts(name, previous))
    return chosen, environment.requires.policies


def _yaml_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    found = [*directory.glob("*.yaml"), *directory.glob("*.yml")]
    return [Path(_shown(path)) for path in sorted(found) if path.is_file()]


def _shown(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)

"""`conveyor policy`: check the rules, run their tests, decide an input, print its schema."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from conveyor.cli.errors import BAD_INPUT, WORK_FAILED
from conveyor.cli.output import write_output
from conveyor.cli.pipeline import FileOption, JsonOption

if TYPE_CHECKING:
    from conveyor.core.errors import SpecError, SpecIssue
    from conveyor.policy.cases import CaseResult
    from conveyor.policy.model import Decision, Rule, RuleResult
    from conveyor.spec.delivery import Delivery

app = typer.Typer(
    help=(
        "Policy as code: rules in policies/*.yaml, each a CEL expression over the "
        "decision input (release, environment, requester, approvals, time, previous "
        "deployments) that denies or warns with a message.\n\n"
        "`check` validates the rules, `test` runs them against the example inputs in "
        "policies/tests/*.yaml, `eval` decides one input, `schema` prints the input's "
        "JSON Schema. See docs/policy.md."
    ),
    no_args_is_help=True,
)


def register(main: typer.Typer) -> None:
    main.add_typer(app, name="policy")


InputOption = Annotated[
    Path,
    typer.Option(
        "--input",
        "-i",
        help="A JSON file with the decision input; missing parts get neutral defaults.",
        show_default=False,
    ),
]
EnvOption = Annotated[
    str | None,
    typer.Option(
        "--env",
        help="Decide as a promotion into this environment of conveyor.yaml: only the rules "
        "its requires.policies names, with environment.name and .previous filled in.",
    ),
]
SYMBOLS = {"allow": "✓", "warn": "!", "deny": "✗", "error": "✗", "skipped": "○"}


@app.command()
def check(file: FileOption = None, json_output: JsonOption = False) -> None:
    """Load and validate every rule file, and the rules conveyor.yaml's environments require.

    Every problem is printed with its file, line and column. Exit code 0 when
    the rules are valid, 2 when they are not.
    """
    from conveyor.core.errors import SpecError

    root, rules, delivery_issues = _load_checked(file)
    if delivery_issues:
        error = SpecError(delivery_issues)
        if json_output:
            _fail_json({"valid": False}, error)
        raise error
    if json_output:
        _print_json({"valid": True, "rules": [_rule_json(rule) for rule in rules]})
        return
    if not rules:
        typer.echo(f"no rules yet: write them in {root / 'policies'}/*.yaml (see docs/policy.md)")
        return
    files = len({rule.location.file for rule in rules})
    noun = "rule" if len(rules) == 1 else "rules"
    typer.echo(f"{len(rules)} {noun} in {files} file{'s' if files != 1 else ''}: valid")
    width = max(len(rule.name) for rule in rules)
    for rule in rules:
        typer.echo(f"  {rule.name.ljust(width)}  {rule.effect.ljust(4)}  {rule.location}")


@app.command(name="test")
def test_rules(file: FileOption = None, json_output: JsonOption = False) -> None:
    """Run the rules against the example inputs in policies/tests/*.yaml.

    Each case gives an input (missing parts get neutral defaults) and the
    outcome it expects, overall and for named rules (allow, warn, deny, or
    error for a rule that cannot be evaluated). Exit code 0 when every case
    passes, 1 when one fails, 2 when a rule or case file is invalid.
    """
    from conveyor.core.errors import SpecError
    from conveyor.engine.policies import load_workspace_cases, load_workspace_rules
    from conveyor.engine.workspace import discover
    from conveyor.policy.cases import run_cases

    root = discover(file).root
    try:
        rules = load_workspace_rules(root)
        cases = load_workspace_cases(root, rules)
    except SpecError as error:
        if json_output:
            _fail_json({"passed": False}, error)
        raise
    results = run_cases(rules, cases)
    passed = all(result.passed for result in results)
    if json_output:
        summary = {"cases": len(results), "passed": sum(r.passed for r in results)}
        summary["failed"] = summary["cases"] - summary["passed"]
        doc = {"passed": passed, "summary": summary, "cases": [_case_json(r) for r in results]}
        _print_json(doc)
    else:
        typer.echo(_cases_text(results, root))
    if not passed:
        raise typer.Exit(WORK_FAILED)


@app.command(name="eval")
def eval_input(
    input_file: InputOption,
    env: EnvOption = None,
    file: FileOption = None,
    json_output: JsonOption = False,
) -> None:
    """Decide one input with the rules and print the decision, with every rule's outcome.

    Without --env every rule is evaluated. Exit code 0 when the decision is
    allow or warn, 1 when it is deny, 2 on a bad rule or input file.
    """
    from conveyor.engine.policies import for_environment, load_workspace_rules
    from conveyor.engine.workspace import discover
    from conveyor.policy.evaluate import evaluate
    from conveyor.policy.loader import load_input

    workspace = discover(file)
    rules = load_workspace_rules(workspace.root)
    facts = load_input(input_file)
    names = None
    if env is not None:
        facts, names = for_environment(facts, _delivery(workspace.spec_path), env)
    decision = evaluate(rules, facts, names)
    if json_output:
        _print_json(_decision_json(decision))
    else:
        typer.echo(_decision_text(decision))
    if decision.outcome == "deny":
        raise typer.Exit(WORK_FAILED)


@app.command()
def schema(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file instead of stdout.")
    ] = None,
) -> None:
    """Print the JSON Schema of the decision input (the format `eval --input` reads)."""
    from conveyor.policy.schema import json_schema

    text = _dumps(json_schema()) + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        write_output(output, text)
        typer.echo(f"wrote {output}")


# --- loading -------------------------------------------------------------------------


def _load_checked(file: Path | None) -> tuple[Path, tuple[Rule, ...], list[SpecIssue]]:
    """The rules, and every issue in them or in the environments' references to them."""
    from conveyor.core.errors import SpecError
    from conveyor.engine.policies import load_workspace_rules
    from conveyor.engine.workspace import discover
    from conveyor.policy.evaluate import check_required

    workspace = discover(file)
    issues: list[SpecIssue] = []
    rules: tuple[Rule, ...] = ()
    try:
        rules = load_workspace_rules(workspace.root)
    except SpecError as error:
        issues.extend(error.issues)
    try:
        delivery = _delivery(workspace.spec_path)
    except SpecError as error:
        issues.extend(error.issues)
        delivery = None
    if delivery is not None and not issues:
        issues.extend(check_required(rules, delivery.environments))
    return workspace.root, rules, issues


def _delivery(spec_path: Path) -> Delivery | None:
    from conveyor.spec.loader import load_pipeline

    try:
        shown = os.path.relpath(spec_path)
    except ValueError:
        shown = str(spec_path)
    return load_pipeline(shown).delivery


# --- rendering -----------------------------------------------------------------------


def _dumps(value: object) -> str:
    from conveyor.cli.render import dumps

    return dumps(value)


def _print_json(value: object) -> None:
    sys.stdout.write(_dumps(value) + "\n")


def _fail_json(head: dict[str, object], error: SpecError) -> None:
    errors = [
        {
            "file": issue.location.file,
            "line": issue.location.line,
            "column": issue.location.column,
            "message": issue.message,
            "hint": issue.hint,
        }
        for issue in error.issues
    ]
    _print_json({**head, "errors": errors})
    raise typer.Exit(BAD_INPUT)


def _rule_json(rule: Rule) -> dict[str, object]:
    return {
        "name": rule.name,
        "effect": rule.effect,
        "description": rule.description,
        "when": rule.when,
        "expression": rule.expression,
        "zone": rule.zone,
        "file": rule.location.file,
        "line": rule.location.line,
    }


def _result_json(result: RuleResult) -> dict[str, object]:
    return {
        "rule": result.rule,
        "outcome": result.outcome,
        "applied": result.applied,
        "message": result.message,
        "error": result.error,
    }


def _decision_json(decision: Decision) -> dict[str, object]:
    return {
        "outcome": decision.outcome,
        "reasons": list(decision.reasons),
        "rules": [_result_json(result) for result in decision.results],
    }


def _state(result: RuleResult) -> str:
    if result.error is not None:
        return "error"
    return result.outcome if result.applied else "skipped"


def _decision_text(decision: Decision) -> str:
    lines = [f"decision: {decision.outcome}"]
    if not decision.results:
        lines.append("  no rules apply")
    width = max((len(result.rule) for result in decision.results), default=0)
    for result in decision.results:
        state = _state(result)
        detail = result.message or ("its 'when' is false" if state == "skipped" else "")
        line = f"  {SYMBOLS[state]} {result.rule.ljust(width)}  {state.ljust(7)}  {detail}"
        lines.append(line.rstrip())
    return "\n".join(lines)


def _case_json(result: CaseResult) -> dict[str, object]:
    case = result.case
    actual = {r.rule: ("error" if r.error else r.outcome) for r in result.decision.results}
    return {
        "name": case.name,
        "file": case.location.file,
        "line": case.location.line,
        "passed": result.passed,
        "expected": {"outcome": case.outcome, "rules": dict(case.rules)},
        "actual": {"outcome": result.decision.outcome, "rules": actual},
        "mismatches": [
            {"subject": m.subject, "expected": m.expected, "actual": m.actual, "detail": m.detail}
            for m in result.mismatches
        ],
    }


def _cases_text(results: tuple[CaseResult, ...], root: Path) -> str:
    if not results:
        return f"no policy tests yet: write cases in {root / 'policies' / 'tests'}/*.yaml"
    lines = []
    for result in results:
        if result.passed:
            lines.append(f"✓ {result.case.name}")
            continue
        lines.append(f"✗ {result.case.name}  ({result.case.location})")
        for miss in result.mismatches:
            what = "outcome" if miss.subject == "outcome" else f"rule {miss.subject}"
            line = f"    {what}: expected {miss.expected}, got {miss.actual}"
            lines.append(line + (f" ({miss.detail})" if miss.detail else ""))
    failed = sum(not result.passed for result in results)
    noun = "case" if len(results) == 1 else "cases"
    lines.append(f"{len(results)} {noun}: {len(results) - failed} passed, {failed} failed")
    return "\n".join(lines)

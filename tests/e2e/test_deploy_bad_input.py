"""`status`, `deployments`, `reconcile` with bad input: exit 2, the fix named, nothing stored."""

from __future__ import annotations

import pytest

from .support import WorkspaceFactory

NO_DELIVERY = "version: 1\njobs:\n  a:\n    run: 'true'\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["reconcile", "--timeout", "soon"], "--timeout: 'soon' is not a duration"),
        (["deployments", "--limit", "0"], "0 is not in the range x>=1"),
        (["status"], "conveyor.yaml has no `delivery:` section, so no environments"),
        (["status", "--json"], "conveyor.yaml has no `delivery:` section, so no environments"),
    ],
)
def test_bad_arguments_and_a_pipeline_that_delivers_nothing_exit_2_naming_the_fix(
    workspace: WorkspaceFactory, args: list[str], message: str
) -> None:
    ws = workspace(NO_DELIVERY)

    result = ws.cli(*args)

    assert result.code == 2, result.text
    assert message in result.err
    if "--json" in args:  # the error itself, for a program
        assert result.json() == {"error": {"message": message, "exit_code": 2}}
    else:
        assert result.out == ""
    assert not ws.state.exists() or ws.events() == []

"""Secret names, values and keys as values: the rules, and the key's id."""

from __future__ import annotations

import pytest

from conveyor.core.errors import UsageError
from conveyor.core.secrets import (
    check_secret_name,
    check_secret_value,
    format_key,
    key_id,
    parse_key,
)


@pytest.mark.parametrize("name", ["TOKEN", "DEPLOY_TOKEN_2", "_PRIVATE", "A"])
def test_environment_variable_names_are_accepted(name: str) -> None:
    assert check_secret_name(name) == name


@pytest.mark.parametrize(
    ("name", "suggestion"),
    [("deploy-token", "DEPLOY_TOKEN"), ("2FA", "_2FA"), ("my token", "MY_TOKEN"), ("", "MY_TOKEN")],
)
def test_other_names_are_refused_with_the_rule_and_a_suggestion(name: str, suggestion: str) -> None:
    with pytest.raises(UsageError) as caught:
        check_secret_name(name)

    assert "use capital letters, digits and underscores" in str(caught.value)
    assert f"for example {suggestion})" in str(caught.value)


def test_names_of_conveyors_own_variables_are_reserved() -> None:
    with pytest.raises(UsageError, match="starts with CONVEYOR_, which is reserved"):
        check_secret_name("CONVEYOR_RUN_ID")


@pytest.mark.parametrize("value", ["", "   ", "\n"])
def test_an_empty_value_is_refused(value: str) -> None:
    with pytest.raises(UsageError, match="the value for secret TOKEN is empty"):
        check_secret_value("TOKEN", value)


def test_a_value_that_is_not_utf8_is_refused_without_showing_it() -> None:
    with pytest.raises(UsageError, match="is not UTF-8 text") as refused:
        check_secret_value("TOKEN", b"caf\xe9Secret".decode("utf-8", "surrogateescape"))
    assert "Secret" not in str(refused.value)


def test_a_key_round_trips_and_its_id_is_short_and_stable() -> None:
    key = bytes(range(32))

    assert parse_key(format_key(key)) == key
    assert parse_key(format_key(key).rstrip("=")) == key
    assert key_id(key) == key_id(bytes(range(32)))
    assert len(key_id(key)) == 16
    assert key_id(key) != key_id(bytes(32))


@pytest.mark.parametrize("text", ["", "short", "!" * 44, format_key(bytes(16))])
def test_a_malformed_key_is_refused_naming_the_variable_not_the_value(text: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_key(text, variable="CONVEYOR_SECRET_KEY_PREVIOUS")

    message = str(caught.value)
    assert message.startswith("CONVEYOR_SECRET_KEY_PREVIOUS is not a secret key")
    assert "conveyor secret keygen" in message
    assert not text or text not in message

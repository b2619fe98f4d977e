"""Requests that cannot create a payment: each answers 400 with a problem document."""

from __future__ import annotations

import http.client
import json
from urllib.parse import urlsplit

import pytest

from apiclient import Client, Response
from payments.app import MAX_BODY_BYTES, PaymentsServer

KNOWN = "AUD, CAD, CHF, DKK, EUR, GBP, JPY, NOK, SEK, USD"


def _assert_bad_request(response: Response, field: str, message: str) -> None:
    assert response.status == 400
    assert response.content_type == "application/problem+json"
    assert response.body["title"] == "Bad Request"
    assert response.body["status"] == 400
    assert response.body["errors"] == [{"field": field, "message": message}]
    assert response.body["detail"] == f"the payment cannot be created: {field} {message}"


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        pytest.param({"currency": "EUR"}, "amount", "is required", id="missing amount"),
        pytest.param(
            {"amount": -500, "currency": "EUR"},
            "amount",
            "must be a positive number of cents, got -500",
            id="negative amount",
        ),
        pytest.param(
            {"amount": 0, "currency": "EUR"},
            "amount",
            "must be a positive number of cents, got 0",
            id="zero amount",
        ),
        pytest.param(
            {"amount": 12.5, "currency": "EUR"},
            "amount",
            "must be an integer number of cents, got 12.5",
            id="fractional cents",
        ),
        pytest.param(
            {"amount": 1250.0, "currency": "EUR"},
            "amount",
            "must be an integer number of cents, got 1250.0",
            id="cents written as a float",
        ),
        pytest.param(
            {"amount": "1250", "currency": "EUR"},
            "amount",
            "must be an integer number of cents, got '1250'",
            id="cents as a string",
        ),
        pytest.param(
            {"amount": True, "currency": "EUR"},
            "amount",
            "must be an integer number of cents, got true",
            id="cents as a boolean",
        ),
        pytest.param(
            {"amount": 1250, "currency": "XYZ"},
            "currency",
            f"must be one of {KNOWN}, got 'XYZ'",
            id="unknown currency",
        ),
        pytest.param(
            {"amount": 1250, "currency": "eur"},
            "currency",
            f"must be one of {KNOWN}, got 'eur'",
            id="lower-case currency",
        ),
        pytest.param({"amount": 1250}, "currency", "is required", id="missing currency"),
        pytest.param(
            {"amount": 1250, "currency": "EUR", "description": "x" * 141},
            "description",
            "must be text of at most 140 characters",
            id="description too long",
        ),
        pytest.param(
            {"amount": 1250, "currency": "EUR", "payee": "ACME"},
            "payee",
            "is not a known field",
            id="unknown field",
        ),
        pytest.param([1250, "EUR"], "body", "must be a JSON object", id="body not an object"),
    ],
)
def test_an_invalid_payment_is_a_bad_request_naming_the_field(
    client: Client, body: object, field: str, message: str
) -> None:
    _assert_bad_request(client.post("/payments", body), field, message)


def test_every_invalid_field_is_reported_at_once(client: Client) -> None:
    response = client.post("/payments", {"amount": -1, "currency": "XYZ"})

    assert response.status == 400
    assert [error["field"] for error in response.body["errors"]] == ["amount", "currency"]


def test_a_rejected_payment_is_not_stored(client: Client) -> None:
    client.post("/payments", {"amount": -1, "currency": "EUR"})

    assert client.get("/payments").body == {"payments": []}


def test_a_body_that_is_not_json_is_a_bad_request(client: Client) -> None:
    response = client.request("POST", "/payments", b"amount=1250&currency=EUR")

    assert response.status == 400
    assert response.content_type == "application/problem+json"
    assert str(response.body["detail"]).startswith("the body is not valid JSON")


def test_an_empty_body_is_a_bad_request(client: Client) -> None:
    response = client.request("POST", "/payments", b"")

    assert response.status == 400
    assert response.body["detail"] == "the body must be a JSON object; it is empty"


def test_a_body_larger_than_the_limit_is_refused_unread(server: PaymentsServer) -> None:
    address = urlsplit(server.url)
    connection = http.client.HTTPConnection(address.hostname or "", address.port, timeout=5)
    try:
        connection.putrequest("POST", "/payments")
        connection.putheader("Content-Type", "application/json")
        connection.putheader("Content-Length", str(MAX_BODY_BYTES + 1))
        connection.endheaders()
        response = connection.getresponse()
        body = json.loads(response.read())
    finally:
        connection.close()

    assert response.status == 413
    assert body["status"] == 413
    assert body["detail"] == (
        f"the body has {MAX_BODY_BYTES + 1} bytes; at most {MAX_BODY_BYTES} are accepted"
    )

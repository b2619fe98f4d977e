"""Creating, listing and fetching payments over HTTP."""

from __future__ import annotations

import http.client
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import payments
from apiclient import Client
from payments.app import PaymentsServer

PROJECT = Path(__file__).resolve().parent.parent


def test_health_reports_ok_and_the_package_version(client: Client) -> None:
    response = client.get("/healthz")

    assert response.status == 200
    assert response.content_type == "application/json"
    assert response.body == {"status": "ok", "version": payments.__version__}


def test_the_package_version_is_the_project_version() -> None:
    project = tomllib.loads((PROJECT / "pyproject.toml").read_text())["project"]

    assert payments.__version__ == project["version"]


def test_a_new_service_has_no_payments(client: Client) -> None:
    response = client.get("/payments")

    assert response.status == 200
    assert response.body == {"payments": []}


def test_creating_a_payment_returns_it_with_an_id_and_its_location(client: Client) -> None:
    response = client.post(
        "/payments", {"amount": 1250, "currency": "EUR", "description": "Order 1042"}
    )

    assert response.status == 201
    body = response.body
    assert str(body["id"]).startswith("pay_")
    assert response.headers["Location"] == f"/payments/{body['id']}"
    assert (body["amount"], body["currency"], body["description"]) == (1250, "EUR", "Order 1042")
    assert str(body["created_at"]).endswith("Z")


def test_a_description_is_optional(client: Client) -> None:
    response = client.post("/payments", {"amount": 500, "currency": "JPY"})

    assert response.status == 201
    assert response.body["description"] is None


def test_a_created_payment_can_be_fetched_by_its_id(client: Client) -> None:
    created = client.post("/payments", {"amount": 999, "currency": "USD"}).body

    response = client.get(f"/payments/{created['id']}")

    assert response.status == 200
    assert response.body == created


def test_payments_are_listed_in_the_order_they_were_created(client: Client) -> None:
    first = client.post("/payments", {"amount": 100, "currency": "GBP"}).body
    second = client.post("/payments", {"amount": 200, "currency": "CHF"}).body

    response = client.get("/payments")

    assert response.body == {"payments": [first, second]}


def test_payments_created_at_the_same_time_all_get_distinct_ids(client: Client) -> None:
    def create(n: int) -> str:
        return str(client.post("/payments", {"amount": n + 1, "currency": "SEK"}).body["id"])

    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = list(pool.map(create, range(40)))

    listed = client.get("/payments").body["payments"]
    assert len(set(ids)) == 40
    assert sorted(p["id"] for p in listed) == sorted(ids)


def test_an_unknown_payment_is_not_found_as_a_problem_document(client: Client) -> None:
    response = client.get("/payments/pay_0000000000000000")

    assert response.status == 404
    assert response.content_type == "application/problem+json"
    assert response.body == {
        "type": "about:blank",
        "title": "Not Found",
        "status": 404,
        "detail": "there is no payment 'pay_0000000000000000'",
    }


def test_an_unknown_path_is_not_found(client: Client) -> None:
    response = client.get("/refunds")

    assert response.status == 404
    assert response.content_type == "application/problem+json"


def test_a_method_a_path_does_not_support_is_not_allowed(client: Client) -> None:
    response = client.request("DELETE", "/payments")

    assert response.status == 405
    assert response.headers["Allow"] == "GET, POST"
    assert response.body["detail"] == "DELETE is not allowed here; use GET, POST"


def test_head_answers_like_get_without_a_body(server: PaymentsServer) -> None:
    address = urlsplit(server.url)
    connection = http.client.HTTPConnection(address.hostname or "", address.port, timeout=5)
    try:
        connection.request("HEAD", "/healthz")
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()

    assert response.status == 200
    assert response.getheader("Server") == f"payments-api/{payments.__version__}"
    assert int(response.getheader("Content-Length") or 0) > 0
    assert body == b""

"""The HTTP interface of payments-api, and the command that serves it.

Run it with `python -m payments.app --port 8080` (or `PORT=8080`). Errors are
answered as RFC 9457 problem documents (`application/problem+json`).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import cast
from urllib.parse import urlsplit

from payments import __version__
from payments.model import FieldError, InvalidPaymentError, parse_new_payment
from payments.store import PaymentStore

MAX_BODY_BYTES = 64 * 1024
JSON_TYPE = "application/json"
PROBLEM_TYPE = "application/problem+json"

log = logging.getLogger("payments")


class RequestError(Exception):
    """A request answered with an error: HTTP status, what went wrong, per-field errors."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        errors: Sequence[FieldError] = (),
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = tuple(errors)
        self.headers = headers or {}

    def to_json(self) -> dict[str, object]:
        body: dict[str, object] = {
            "type": "about:blank",
            "title": HTTPStatus(self.status).phrase,
            "status": int(self.status),
            "detail": self.detail,
        }
        if self.errors:
            body["errors"] = [{"field": e.field, "message": e.message} for e in self.errors]
        return body


@dataclass
class Reply:
    """A successful answer: HTTP status, JSON body and extra headers."""

    status: int
    body: dict[str, object]
    headers: dict[str, str] = field(default_factory=dict)


class PaymentsServer(ThreadingHTTPServer):
    """A threaded HTTP server holding the payment store.

    Request threads are not daemons, so `server_close()` waits for the
    requests in flight: a SIGTERM never cuts a response in half.
    """

    daemon_threads = False
    block_on_close = True
    # The socketserver default backlog of 5 drops connections under a modest burst.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], store: PaymentStore | None = None) -> None:
        super().__init__(address, PaymentsHandler)
        self.store = store if store is not None else PaymentStore()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


class PaymentsHandler(BaseHTTPRequestHandler):
    """Routes one request and writes a JSON answer."""

    server_version = f"payments-api/{__version__}"
    # A stalled client cannot hold a thread, or shutdown, for long.
    timeout = 10

    def do_GET(self) -> None:
        self._handle("GET")

    def do_HEAD(self) -> None:
        # Answered like GET; `_write` leaves the body out.
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Errors found by the HTTP machinery itself are problem documents too."""
        self.close_connection = True
        detail = message or explain or HTTPStatus(code).description
        self._write(
            code, RequestError(code, detail).to_json(), PROBLEM_TYPE, {"Connection": "close"}
        )

    def version_string(self) -> str:
        """The `Server` header: this service, not the Python version behind it."""
        return self.server_version

    def log_message(self, format: str, *args: object) -> None:
        log.info("%s %s", self.address_string(), format % args)

    def _handle(self, method: str) -> None:
        try:
            reply = self._route(method, urlsplit(self.path).path)
        except RequestError as problem:
            self._write(problem.status, problem.to_json(), PROBLEM_TYPE, problem.headers)
        else:
            self._write(reply.status, reply.body, JSON_TYPE, reply.headers)

    def _route(self, method: str, path: str) -> Reply:
        match method, path.strip("/").split("/"):
            case "GET", ["healthz"]:
                return Reply(HTTPStatus.OK, {"status": "ok", "version": __version__})
            case "GET", ["payments"]:
                payments = [payment.to_json() for payment in self._store.all()]
                return Reply(HTTPStatus.OK, {"payments": payments})
            case "POST", ["payments"]:
                return self._create()
            case "GET", ["payments", payment_id]:
                payment = self._store.get(payment_id)
                if payment is None:
                    raise RequestError(HTTPStatus.NOT_FOUND, f"there is no payment '{payment_id}'")
                return Reply(HTTPStatus.OK, payment.to_json())
            case _, ["healthz"] | ["payments", _]:
                raise _not_allowed(method, "GET")
            case _, ["payments"]:
                raise _not_allowed(method, "GET, POST")
            case _:
                raise RequestError(HTTPStatus.NOT_FOUND, f"there is nothing at {path}")

    def _create(self) -> Reply:
        try:
            new = parse_new_payment(self._read_json())
        except InvalidPaymentError as exc:
            detail = "the payment cannot be created: " + "; ".join(
                f"{e.field} {e.message}" for e in exc.errors
            )
            raise RequestError(HTTPStatus.BAD_REQUEST, detail, errors=exc.errors) from exc
        payment = self._store.add(new)
        log.info("created %s: %d %s", payment.id, payment.amount, payment.currency)
        return Reply(HTTPStatus.CREATED, payment.to_json(), {"Location": f"/payments/{payment.id}"})

    def _read_json(self) -> object:
        try:
            length = int(self.headers.get("Content-Length") or "0")
        except ValueError:
            length = -1
        if length < 0:
            raise RequestError(HTTPStatus.BAD_REQUEST, "Content-Length must be a number of bytes")
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            raise RequestError(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"the body has {length} bytes; at most {MAX_BODY_BYTES} are accepted",
            )
        raw = self.rfile.read(length)
        if not raw.strip():
            raise RequestError(
                HTTPStatus.BAD_REQUEST, "the body must be a JSON object; it is empty"
            )
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise RequestError(
                HTTPStatus.BAD_REQUEST, f"the body is not valid JSON: {exc}"
            ) from exc

    @property
    def _store(self) -> PaymentStore:
        return cast(PaymentsServer, self.server).store

    def _write(
        self, status: int, body: dict[str, object], content_type: str, headers: dict[str, str]
    ) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)


def _not_allowed(method: str, allowed: str) -> RequestError:
    return RequestError(
        HTTPStatus.METHOD_NOT_ALLOWED,
        f"{method} is not allowed here; use {allowed}",
        headers={"Allow": allowed},
    )


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"'{text}' is not a port number (0 to 65535)")
    return port


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="payments-api", description="Serve the payments API.")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    parser.add_argument(
        "--port",
        type=_port,
        default=os.environ.get("PORT", "8000"),
        help="port to listen on; 0 picks a free one (default: $PORT, else 8000)",
    )
    parser.add_argument("--version", action="version", version=f"payments-api {__version__}")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGTERM or SIGINT, then finish the requests in flight and exit 0."""
    args = _parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    server = PaymentsServer((args.host, args.port))
    stopping = threading.Event()

    def stop(signum: int, _frame: FrameType | None) -> None:
        if not stopping.is_set():
            stopping.set()
            log.info("received %s, shutting down", signal.Signals(signum).name)
            # shutdown() waits for serve_forever(), which runs on this very thread.
            threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"payments-api {__version__} listening on {server.url}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())

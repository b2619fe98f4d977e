"""In-memory payment storage, safe to share between request threads."""

from __future__ import annotations

import secrets
import threading
from datetime import UTC, datetime

from payments.model import NewPayment, Payment


class PaymentStore:
    """Payments in the order they were created; lost when the process stops."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._payments: dict[str, Payment] = {}

    def add(self, new: NewPayment) -> Payment:
        created_at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        with self._lock:
            payment_id = self._new_id()
            payment = Payment(
                id=payment_id,
                amount=new.amount,
                currency=new.currency,
                description=new.description,
                created_at=created_at,
            )
            self._payments[payment_id] = payment
        return payment

    def get(self, payment_id: str) -> Payment | None:
        with self._lock:
            return self._payments.get(payment_id)

    def all(self) -> list[Payment]:
        with self._lock:
            return list(self._payments.values())

    def _new_id(self) -> str:
        while True:
            payment_id = f"pay_{secrets.token_hex(8)}"
            if payment_id not in self._payments:
                return payment_id

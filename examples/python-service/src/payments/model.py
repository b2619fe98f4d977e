"""Payments and the rules a request to create one must follow."""

from __future__ import annotations

from dataclasses import dataclass

# ISO 4217 codes this service accepts.
CURRENCIES = frozenset({"AUD", "CAD", "CHF", "DKK", "EUR", "GBP", "JPY", "NOK", "SEK", "USD"})
DESCRIPTION_LIMIT = 140
FIELDS = ("amount", "currency", "description")


@dataclass(frozen=True)
class FieldError:
    """What is wrong with one field of a request."""

    field: str
    message: str


class InvalidPaymentError(Exception):
    """A request to create a payment breaks one or more rules."""

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))


@dataclass(frozen=True)
class NewPayment:
    """A validated request: `amount` is in the currency's minor unit (cents)."""

    amount: int
    currency: str
    description: str | None = None


@dataclass(frozen=True)
class Payment:
    """A recorded payment."""

    id: str
    amount: int
    currency: str
    description: str | None
    created_at: str

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "amount": self.amount,
            "currency": self.currency,
            "description": self.description,
            "created_at": self.created_at,
        }


def parse_new_payment(data: object) -> NewPayment:
    """The payment that `data` (a decoded JSON body) asks for; InvalidPaymentError otherwise."""
    if not isinstance(data, dict):
        raise InvalidPaymentError([FieldError("body", "must be a JSON object")])
    errors = [FieldError(name, "is not a known field") for name in data if name not in FIELDS]
    amount = _amount(data, errors)
    currency = _currency(data, errors)
    description = _description(data, errors)
    if errors or amount is None or currency is None:
        raise InvalidPaymentError(errors)
    return NewPayment(amount=amount, currency=currency, description=description)


def _amount(data: dict[str, object], errors: list[FieldError]) -> int | None:
    if "amount" not in data:
        errors.append(FieldError("amount", "is required"))
        return None
    value = data["amount"]
    # bool is an int in Python, but `true` is not an amount.
    if isinstance(value, bool) or not isinstance(value, int):
        errors.append(
            FieldError("amount", f"must be an integer number of cents, got {_show(value)}")
        )
        return None
    if value <= 0:
        errors.append(FieldError("amount", f"must be a positive number of cents, got {value}"))
        return None
    return value


def _currency(data: dict[str, object], errors: list[FieldError]) -> str | None:
    if "currency" not in data:
        errors.append(FieldError("currency", "is required"))
        return None
    value = data["currency"]
    if not isinstance(value, str) or value not in CURRENCIES:
        known = ", ".join(sorted(CURRENCIES))
        errors.append(FieldError("currency", f"must be one of {known}, got {_show(value)}"))
        return None
    return value


def _description(data: dict[str, object], errors: list[FieldError]) -> str | None:
    value = data.get("description")
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > DESCRIPTION_LIMIT:
        errors.append(
            FieldError("description", f"must be text of at most {DESCRIPTION_LIMIT} characters")
        )
        return None
    return value


def _show(value: object) -> str:
    if isinstance(value, str):
        return repr(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return f"a JSON {'array' if isinstance(value, list) else 'object'}"

"""The PUT body (write shape): validation, and applying it as a real PUT.

A PUT is the complete representation: every writable field takes the value sent, and a writable
field left out is reset (to null, or false for ``intraCommunityTaxes``). Writable fields include
those no client model knows (``supplierReference`` ...): any field a document carries that is not
read-only. That is exactly how a client that drops an unknown field gets caught in ground truth.
Fields sent that the document does not carry are ignored, as ASP.NET ignores unknown members.
"""

from __future__ import annotations

import math
from datetime import date
from typing import Any

from .catalog import purchase_ref, user_ref

DOCUMENT_TYPES = ("Invoice", "CreditNote")
#: Read-shape fields the PUT must not send (``owner`` is written as ``ownerId``).
READ_ONLY_DOCUMENT_FIELDS: frozenset[str] = frozenset(
    {
        "id",
        "attachments",
        "ocrStatus",
        "createdAt",
        "modifiedAt",
        "author",
        "modifier",
        "owner",
        "documentBreakdown",
    }
)
READ_ONLY_ITEM_FIELDS: frozenset[str] = frozenset(
    {"id", "source", "createdAt", "modifiedAt", "author", "modifier"}
)
#: Known writable fields, in the read shape's names.
KNOWN_WRITABLE_FIELDS: tuple[str, ...] = (
    "owner",
    "type",
    "context",
    "documentDate",
    "documentNumber",
    "amountIncludingTaxes",
    "accountingLabel",
    "comment",
    "intraCommunityTaxes",
    "dueDate",
    "paymentDetails",
)
_STRING_FIELDS = ("documentNumber", "accountingLabel", "comment")
_DATE_FIELDS = ("documentDate", "dueDate")

Errors = dict[str, list[str]]


# --- validation -------------------------------------------------------------------------------


def validate_put_body(body: Any) -> Errors:
    """Every problem with the body, keyed by the field's path (empty when valid)."""
    errors: Errors = {}
    if not isinstance(body, dict):
        return {"$": ["The request body must be a JSON object."]}
    for name in sorted(READ_ONLY_ITEM_FIELDS & body.keys()):
        _add(errors, name, f"'{name}' is read-only and must not be sent.")
    document = body.get("document")
    if document is None:
        _add(errors, "document", "The document field is required.")
    elif not isinstance(document, dict):
        _add(errors, "document", "The document field must be an object.")
    else:
        _validate_document(document, errors)
    action = body.get("action")
    if action is not None:
        _validate_action(action, errors)
    return errors


def _validate_document(document: dict[str, Any], errors: Errors) -> None:
    for name in sorted(READ_ONLY_DOCUMENT_FIELDS & document.keys()):
        hint = " Send 'ownerId' instead." if name == "owner" else ""
        _add(errors, f"document.{name}", f"'{name}' is read-only and must not be sent.{hint}")
    doc_type = document.get("type")
    if doc_type is None:
        _add(errors, "document.type", "The type field is required.")
    elif doc_type not in DOCUMENT_TYPES:
        _add(errors, "document.type", f"The type must be one of {', '.join(DOCUMENT_TYPES)}.")
    _check(errors, "document.ownerId", document.get("ownerId"), _is_int, "an integer")
    for name in _STRING_FIELDS:
        _check(errors, f"document.{name}", document.get(name), _is_str, "a string")
    for name in _DATE_FIELDS:
        _check(errors, f"document.{name}", document.get(name), _is_date, "a YYYY-MM-DD date")
    flag = document.get("intraCommunityTaxes")
    _check(errors, "document.intraCommunityTaxes", flag, _is_bool, "a boolean")
    _validate_context(document.get("context"), errors)
    _validate_amounts(document.get("amountIncludingTaxes"), errors)
    _validate_payment(document.get("paymentDetails"), errors)


def _validate_context(context: Any, errors: Errors) -> None:
    if context is None:
        return
    if not isinstance(context, dict):
        _add(errors, "document.context", "The context must be an object.")
        return
    purchase = context.get("purchase")
    if purchase is None:
        return
    if not isinstance(purchase, dict):
        _add(errors, "document.context.purchase", "The purchase must be an object.")
        return
    if not _is_int(purchase.get("id")):
        _add(errors, "document.context.purchase.id", "The purchase id must be an integer.")
    _check(errors, "document.context.purchase.type", purchase.get("type"), _is_str, "a string")


def _validate_amounts(amounts: Any, errors: Errors) -> None:
    path = "document.amountIncludingTaxes"
    if amounts is None:
        return
    if not isinstance(amounts, dict):
        _add(errors, path, "The amounts must be an object.")
        return
    for name in ("excludingTaxes", "includingTaxes"):
        money = amounts.get(name)
        if money is not None:
            _validate_money(money, f"{path}.{name}", errors)
    taxes = amounts.get("taxes")
    if taxes is None:
        return
    if not isinstance(taxes, list):
        _add(errors, f"{path}.taxes", "The taxes must be an array.")
        return
    for index, tax in enumerate(taxes):
        tax_path = f"{path}.taxes[{index}]"
        if _validate_money(tax, tax_path, errors):
            rate = tax.get("rateTypeId")
            _check(errors, f"{tax_path}.rateTypeId", rate, _is_int, "an integer")


def _validate_money(money: Any, path: str, errors: Errors) -> bool:
    if not isinstance(money, dict):
        _add(errors, path, "An amount must be an object {value, currency}.")
        return False
    if not _is_number(money.get("value")):
        _add(errors, f"{path}.value", "The value must be a number.")
    currency = money.get("currency")
    if not (isinstance(currency, str) and len(currency) == 3 and currency.isalpha()):
        _add(errors, f"{path}.currency", "The currency must be an ISO 4217 code.")
    return True


def _validate_payment(payment: Any, errors: Errors) -> None:
    path = "document.paymentDetails"
    if payment is None:
        return
    if not isinstance(payment, dict):
        _add(errors, path, "The payment details must be an object.")
        return
    _check(errors, f"{path}.paymentMethod", payment.get("paymentMethod"), _is_str, "a string")
    account = payment.get("bankAccount")
    if account is None:
        return
    if not isinstance(account, dict):
        _add(errors, f"{path}.bankAccount", "The bank account must be an object.")
        return
    for name in ("iban", "bic"):
        _check(errors, f"{path}.bankAccount.{name}", account.get(name), _is_str, "a string")


def _validate_action(action: Any, errors: Errors) -> None:
    if not isinstance(action, dict):
        _add(errors, "action", "The action must be an object.")
        return
    if not isinstance(action.get("type"), str):
        _add(errors, "action.type", "The action type is required.")
    for name in ("purchaseId", "paymentId", "installmentId", "disputeId"):
        _check(errors, f"action.{name}", action.get(name), _is_int, "an integer")
    flag = action.get("autoConfirmation")
    _check(errors, "action.autoConfirmation", flag, _is_bool, "a boolean")


def _check(errors: Errors, path: str, value: Any, test: Any, expected: str) -> None:
    """Null is always accepted (a PUT may clear a field); otherwise the value must pass."""
    if value is not None and not test(value):
        _add(errors, path, f"The value must be {expected} or null.")


def _add(errors: Errors, path: str, message: str) -> None:
    errors.setdefault(path, []).append(message)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value)


def _is_str(value: Any) -> bool:
    return isinstance(value, str)


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def _is_date(value: Any) -> bool:
    if not isinstance(value, str) or len(value) != 10:
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


# --- applying ---------------------------------------------------------------------------------


def writable_fields(document: dict[str, Any]) -> list[str]:
    """Known writable fields, then every other non-read-only field the document carries."""
    unknown = [
        name
        for name in document
        if name not in READ_ONLY_DOCUMENT_FIELDS and name not in KNOWN_WRITABLE_FIELDS
    ]
    return [*KNOWN_WRITABLE_FIELDS, *unknown]


def apply_put(document: dict[str, Any], body: dict[str, Any]) -> None:
    """Replace every writable field of ``document`` (read shape) with the body's (write shape).

    The body must have passed ``validate_put_body``.
    """
    sent: dict[str, Any] = body["document"]
    for name in writable_fields(document):
        if name == "owner":
            owner_id = sent.get("ownerId")
            document["owner"] = user_ref(owner_id) if owner_id is not None else None
        elif name == "context":
            document["context"] = _read_context(sent.get("context"))
        elif name == "amountIncludingTaxes":
            document[name] = _read_amounts(sent.get(name))
        elif name == "intraCommunityTaxes":
            document[name] = bool(sent.get(name) or False)
        else:
            document[name] = sent.get(name)
    _apply_action(document, body.get("action"))


def _read_context(context: dict[str, Any] | None) -> dict[str, Any] | None:
    if context is None:
        return None
    purchase = context.get("purchase")
    if purchase is None:
        return {"purchase": None}
    return {"purchase": purchase_ref(purchase["id"], purchase.get("type"))}


def _read_amounts(amounts: dict[str, Any] | None) -> dict[str, Any] | None:
    if amounts is None:
        return None
    # Stored as sent (nested unknowns included); a left-out tax list is an empty one.
    stored = dict(amounts)
    stored.setdefault("taxes", [])
    stored.setdefault("excludingTaxes", None)
    stored.setdefault("includingTaxes", None)
    return stored


def _apply_action(document: dict[str, Any], action: dict[str, Any] | None) -> None:
    """``AttachPurchase`` links the document to the purchase, as the API reference describes."""
    if action and action.get("type") == "AttachPurchase" and action.get("purchaseId") is not None:
        document["context"] = {"purchase": purchase_ref(action["purchaseId"], None)}

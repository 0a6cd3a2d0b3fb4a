"""The PUT body (write shape): validation, and applying it as a real PUT.

A PUT is the complete representation: every writable field takes the value sent, and a writable
field left out is reset (to null, or false for ``intraCommunityTaxes``). Writable fields include
those no client model knows (``supplierReference`` ...): any field a document carries that is not
read-only. That is exactly how a client that drops an unknown field gets caught in ground truth.
Fields sent that the document does not carry are ignored, as ASP.NET ignores unknown members.
The same holds at the top level of the item (``workflowHint`` ...) and inside ``context``, the
purchase reference, the amounts and the payment details: whatever is not read-only is stored as
sent, so whatever a client leaves out is gone.

Lucca's two developer sites publish two bodies (``SimulatorConfig.write_shape``):

- ``lucca.fr`` (developers.lucca.fr): ``document.type`` (required), ``context.purchase.type``, a
  ``currency`` on every amount and ``paymentDetails.paymentMethod`` are writable like the rest.
- ``luccasoftware.com`` (developers.luccasoftware.com): those four are not in the body. They are
  not bound, so sending them changes nothing and leaving them out resets nothing: the server
  keeps what it has. Its PUT response leaves out ``type``, ``ocrStatus`` and ``currency``.
"""

from __future__ import annotations

import copy
import math
from datetime import date
from typing import Any

from .catalog import purchase_ref, user_ref
from .config import WRITE_SHAPE_LUCCA_FR, WRITE_SHAPE_LUCCASOFTWARE

DOCUMENT_TYPES = ("Invoice", "CreditNote")
#: Item-level fields a PUT never stores: the read ``action`` says what is available, the body's
#: ``action`` is a command (see ``_apply_action``).
NOT_STORED_ITEM_FIELDS: frozenset[str] = frozenset({"document", "action"})
#: Display data of a purchase reference: the server fills it from the purchase.
PURCHASE_DISPLAY_FIELDS: frozenset[str] = frozenset({"href", "name"})
#: Without a stored or sent currency, an amount is in the tenant's currency.
TENANT_CURRENCY = "EUR"
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


def validate_put_body(
    body: Any, stored: dict[str, Any] | None = None, shape: str = WRITE_SHAPE_LUCCA_FR
) -> Errors:
    """Every problem with the body, keyed by the field's path (empty when valid).

    ``stored`` is the document as the server holds it: a type it already carries is one it
    knows, even if this simulator's list does not (Lucca adds values; its server accepts them).
    """
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
        _validate_document(document, errors, stored or {}, shape == WRITE_SHAPE_LUCCA_FR)
    action = body.get("action")
    if action is not None:
        _validate_action(action, errors)
    return errors


def _validate_document(
    document: dict[str, Any], errors: Errors, stored: dict[str, Any], full: bool
) -> None:
    """``full``: the lucca.fr body, whose four extra fields are bound (and so validated)."""
    for name in sorted(READ_ONLY_DOCUMENT_FIELDS & document.keys()):
        hint = " Send 'ownerId' instead." if name == "owner" else ""
        _add(errors, f"document.{name}", f"'{name}' is read-only and must not be sent.{hint}")
    if full:
        _validate_type(document.get("type"), stored.get("type"), errors)
    _check(errors, "document.ownerId", document.get("ownerId"), _is_int, "an integer")
    for name in _STRING_FIELDS:
        _check(errors, f"document.{name}", document.get(name), _is_str, "a string")
    for name in _DATE_FIELDS:
        _check(errors, f"document.{name}", document.get(name), _is_date, "a YYYY-MM-DD date")
    flag = document.get("intraCommunityTaxes")
    _check(errors, "document.intraCommunityTaxes", flag, _is_bool, "a boolean")
    _validate_context(document.get("context"), errors, full)
    _validate_amounts(document.get("amountIncludingTaxes"), errors, full)
    _validate_payment(document.get("paymentDetails"), errors, full)


def _validate_type(doc_type: Any, stored_type: Any, errors: Errors) -> None:
    if doc_type is None:
        _add(errors, "document.type", "The type field is required.")
    elif doc_type not in DOCUMENT_TYPES and doc_type != stored_type:
        _add(errors, "document.type", f"The type must be one of {', '.join(DOCUMENT_TYPES)}.")


def _validate_context(context: Any, errors: Errors, full: bool) -> None:
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
    if full:
        kind = purchase.get("type")
        _check(errors, "document.context.purchase.type", kind, _is_str, "a string")


def _validate_amounts(amounts: Any, errors: Errors, full: bool) -> None:
    path = "document.amountIncludingTaxes"
    if amounts is None:
        return
    if not isinstance(amounts, dict):
        _add(errors, path, "The amounts must be an object.")
        return
    for name in ("excludingTaxes", "includingTaxes"):
        money = amounts.get(name)
        if money is not None:
            _validate_money(money, f"{path}.{name}", errors, full)
    taxes = amounts.get("taxes")
    if taxes is None:
        return
    if not isinstance(taxes, list):
        _add(errors, f"{path}.taxes", "The taxes must be an array.")
        return
    for index, tax in enumerate(taxes):
        tax_path = f"{path}.taxes[{index}]"
        if _validate_money(tax, tax_path, errors, full):
            rate = tax.get("rateTypeId")
            _check(errors, f"{tax_path}.rateTypeId", rate, _is_int, "an integer")


def _validate_money(money: Any, path: str, errors: Errors, full: bool) -> bool:
    if not isinstance(money, dict):
        _add(errors, path, "An amount must be an object {value, currency}.")
        return False
    if not _is_number(money.get("value")):
        _add(errors, f"{path}.value", "The value must be a number.")
    currency = money.get("currency")
    is_code = isinstance(currency, str) and len(currency) == 3 and currency.isalpha()
    if full and not is_code:
        _add(errors, f"{path}.currency", "The currency must be an ISO 4217 code.")
    return True


def _validate_payment(payment: Any, errors: Errors, full: bool) -> None:
    path = "document.paymentDetails"
    if payment is None:
        return
    if not isinstance(payment, dict):
        _add(errors, path, "The payment details must be an object.")
        return
    if full:
        method = payment.get("paymentMethod")
        _check(errors, f"{path}.paymentMethod", method, _is_str, "a string")
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


def writable_item_fields(item: dict[str, Any]) -> list[str]:
    """Top-level fields of the item a PUT replaces: those no one knows, as in ``document``."""
    not_written = READ_ONLY_ITEM_FIELDS | NOT_STORED_ITEM_FIELDS
    return [name for name in item if name not in not_written]


def apply_put(
    item: dict[str, Any], body: dict[str, Any], shape: str = WRITE_SHAPE_LUCCA_FR
) -> None:
    """Replace every writable field of ``item`` (read shape) with the body's (write shape).

    The body must have passed ``validate_put_body``.
    """
    for name in writable_item_fields(item):
        item[name] = body.get(name)
    document: dict[str, Any] = item["document"]
    stored = copy.deepcopy(document)
    sent: dict[str, Any] = body["document"]
    full = shape == WRITE_SHAPE_LUCCA_FR
    for name in writable_fields(document):
        if name == "owner":
            owner_id = sent.get("ownerId")
            document["owner"] = user_ref(owner_id) if owner_id is not None else None
        elif name == "type":
            document["type"] = sent.get("type") if full else stored.get("type")
        elif name == "context":
            document["context"] = _read_context(sent.get("context"), stored.get("context"), full)
        elif name == "amountIncludingTaxes":
            document[name] = _read_amounts(sent.get(name), stored.get(name), full)
        elif name == "paymentDetails":
            document[name] = _read_payment(sent.get(name), stored.get(name), full)
        elif name == "intraCommunityTaxes":
            document[name] = bool(sent.get(name) or False)
        else:
            document[name] = sent.get(name)
    _apply_action(document, body.get("action"))


def _read_context(
    context: dict[str, Any] | None, stored: dict[str, Any] | None, full: bool
) -> dict[str, Any] | None:
    """Stored as sent (unknown keys included); the purchase's display data is the server's."""
    if context is None:
        return None
    read = {**context, "purchase": None}
    purchase = context.get("purchase")
    if purchase is not None:
        kind = purchase.get("type") if full else _stored_purchase_type(stored, purchase["id"])
        sent_only = PURCHASE_DISPLAY_FIELDS | {"id", "type"}
        others = {key: value for key, value in purchase.items() if key not in sent_only}
        read["purchase"] = {**purchase_ref(purchase["id"], kind), **others}
    return read


def _stored_purchase_type(stored: dict[str, Any] | None, purchase_id: int) -> str | None:
    """The short body has no purchase type: the server keeps the one it has for that purchase."""
    purchase = (stored or {}).get("purchase")
    if isinstance(purchase, dict) and purchase.get("id") == purchase_id:
        kind: str | None = purchase.get("type")
        return kind
    return None


def _read_amounts(
    amounts: dict[str, Any] | None, stored: dict[str, Any] | None, full: bool
) -> dict[str, Any] | None:
    if amounts is None:
        return None
    # Stored as sent (nested unknowns included); a left-out tax list is an empty one.
    read = copy.deepcopy(amounts)
    read.setdefault("taxes", [])
    read.setdefault("excludingTaxes", None)
    read.setdefault("includingTaxes", None)
    if not full:
        _keep_currencies(read, stored or {})
    return read


def _keep_currencies(read: dict[str, Any], stored: dict[str, Any]) -> None:
    """The short body has no currency: every amount keeps the one the server has for it."""
    fallback = _document_currency(stored)
    for name in ("excludingTaxes", "includingTaxes"):
        money, before = read.get(name), stored.get(name)
        if isinstance(money, dict):
            money["currency"] = before.get("currency") if isinstance(before, dict) else fallback
    stored_taxes = stored.get("taxes") or []
    for index, tax in enumerate(read.get("taxes") or []):
        if isinstance(tax, dict):
            before = stored_taxes[index] if index < len(stored_taxes) else None
            tax["currency"] = before.get("currency") if isinstance(before, dict) else fallback


def _document_currency(stored: dict[str, Any]) -> str:
    for name in ("includingTaxes", "excludingTaxes"):
        money = stored.get(name)
        if isinstance(money, dict) and isinstance(money.get("currency"), str):
            currency: str = money["currency"]
            return currency
    return TENANT_CURRENCY


def _read_payment(
    payment: dict[str, Any] | None, stored: dict[str, Any] | None, full: bool
) -> dict[str, Any] | None:
    if payment is None:
        return None
    # Stored as sent (nested unknowns included); a left-out known field is a null one. The short
    # body has no payment method: the server keeps the one it has.
    read = {"paymentMethod": None, "bankAccount": None, **payment}
    if not full:
        read["paymentMethod"] = (stored or {}).get("paymentMethod")
    return read


def _apply_action(document: dict[str, Any], action: dict[str, Any] | None) -> None:
    """``AttachPurchase`` links the document to the purchase, as the API reference describes."""
    if action and action.get("type") == "AttachPurchase" and action.get("purchaseId") is not None:
        context = dict(document.get("context") or {})
        context["purchase"] = purchase_ref(action["purchaseId"], None)
        document["context"] = context


# --- the response -----------------------------------------------------------------------------


def put_response(item: dict[str, Any], shape: str) -> dict[str, Any]:
    """The item as the PUT answers it: luccasoftware.com's leaves out type, ocrStatus, currency."""
    if shape != WRITE_SHAPE_LUCCASOFTWARE:
        return item
    answered = copy.deepcopy(item)
    document = answered["document"]
    document.pop("type", None)
    document.pop("ocrStatus", None)
    amounts = document.get("amountIncludingTaxes")
    if isinstance(amounts, dict):
        for money in [amounts.get("excludingTaxes"), amounts.get("includingTaxes")]:
            if isinstance(money, dict):
                money.pop("currency", None)
        for tax in amounts.get("taxes") or []:
            if isinstance(tax, dict):
                tax.pop("currency", None)
    return answered

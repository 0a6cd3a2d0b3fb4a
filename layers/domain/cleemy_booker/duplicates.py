"""Invoice numbers that must be unique: which number a document carries, the scope it must be
unique in, and who else already holds it. The review gate asks a ``DuplicateLookup`` before
booking; the ledger answers as one for the numbers it has claimed, and a dry run adds the
numbers of its own listing (``InMemoryDuplicates``, ``ChainedDuplicates``)."""

from __future__ import annotations

from collections import defaultdict
from typing import Protocol

from .models import InboxDocumentWrite, InboxItem


class DuplicateLookup(Protocol):
    def find_duplicate(self, scope: str, number: str, document_id: int) -> int | None:
        """Another document id already booked/claimed with this number in this scope, or None."""
        ...


class InMemoryDuplicates:
    """A DuplicateLookup over documents seen in one run (the dry run's own inbox listing)."""

    def __init__(self) -> None:
        self._holders: defaultdict[tuple[str, str], set[int]] = defaultdict(set)

    def add(self, scope: str, number: str, document_id: int) -> None:
        self._holders[(scope, number)].add(document_id)

    def find_duplicate(self, scope: str, number: str, document_id: int) -> int | None:
        others = self._holders.get((scope, number), set()) - {document_id}
        return min(others) if others else None


class ChainedDuplicates:
    """Ask each lookup in turn (e.g. the ledger of booked numbers, then this run's listing)."""

    def __init__(self, *lookups: DuplicateLookup | None) -> None:
        self._lookups = [lookup for lookup in lookups if lookup is not None]

    def find_duplicate(self, scope: str, number: str, document_id: int) -> int | None:
        for each in self._lookups:
            other = each.find_duplicate(scope, number, document_id)
            if other is not None:
                return other
        return None


def duplicate_scope(item: InboxItem, write: InboxDocumentWrite) -> str | None:
    """Where an invoice number must be unique: its purchase if attached, else its owner.

    There is no supplier field on an inbox item; a purchase belongs to one supplier, and the
    owner is the closest stand-in otherwise. ``item`` is taken so a scope needing read-only data
    can be added without changing callers. None: no scope, so no duplicate check is possible.
    """
    context = write.document.context or {}
    purchase = context.get("purchase") if isinstance(context, dict) else None
    purchase_id = purchase.get("id") if isinstance(purchase, dict) else None
    if purchase_id is not None:
        return f"purchase:{purchase_id}"
    if write.document.ownerId is not None:
        return f"owner:{write.document.ownerId}"
    return None


def duplicate_number(write: InboxDocumentWrite) -> str | None:
    """The number as the processor claims it (unchanged), or None when there is none."""
    number = write.document.documentNumber
    return number if number and number.strip() else None


def describe_scope(scope: str) -> str:
    kind, _, ident = scope.partition(":")
    return f"same {kind} {ident}" if ident else scope

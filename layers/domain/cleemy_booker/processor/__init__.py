"""Processing one document: decide, update when something changed, book — exactly once.

The package reads bottom-up: each module imports only the ones before it in this list,
``outcomes`` (what processing ends in, and the ``Decision`` it is taken on), ``base`` (the
collaborators, and deciding and holding), ``booking`` (the invoice number's claim, the
``BOOKING`` mark, the book call and the outcomes that prove nothing), ``update`` (the PUT, and
the decision taken again on Lucca's answer), ``core`` (``DocumentProcessor.process``: which of
them a document goes through). What the rest of the project uses is named here.
"""

from ..ledger import BOOK_UNCERTAIN  # held by the processor; the poller settles it
from .base import summarize
from .core import DocumentProcessor
from .outcomes import Decision, DeferDocument, DocumentFailed, Outcome, ProcessResult
from .update import UPDATE_NOT_KEPT

__all__ = [
    "BOOK_UNCERTAIN",
    "UPDATE_NOT_KEPT",
    "Decision",
    "DeferDocument",
    "DocumentFailed",
    "DocumentProcessor",
    "Outcome",
    "ProcessResult",
    "summarize",
]

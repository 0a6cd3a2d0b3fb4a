"""Processing one document: decide, update when something changed, book — exactly once.

A house of parts, each an object handed what it uses; the package reads bottom-up, each module
importing only the ones before it in this list: ``outcomes`` (what processing ends in, and the
``Decision`` it is taken on), ``attempt`` (what one attempt has done, and the document's
summary), ``deciding`` (``Deciding``: the rules and the gate; ``Verdicts``: held, planned,
failed, possibly booked), ``numbers`` (``NumberGuard``: the invoice number's claim),
``gone`` (``GoneRuns``: a person's deletion told from a run of 404s),
``booking`` (``Booking``: the ``BOOKING`` mark, the book call and the outcomes that prove
nothing, and a document gone from the inbox), ``update`` (``Updating``: the PUT, and the
decision taken again on Lucca's answer),
``core`` (``DocumentProcessor.process``: the parts composed for an attempt, run in order).
What the rest of the project uses is named here.
"""

from ..ledger import BOOK_UNCERTAIN  # held by the processor; the poller settles it
from .attempt import summarize
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

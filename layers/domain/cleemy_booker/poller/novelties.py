"""Something new Lucca sent, noticed on the listing and recorded once in the ledger."""

from __future__ import annotations

from dataclasses import dataclass

from botocore.exceptions import ClientError

from ..ledger import Markers
from ..listing import ListedDocument
from ..novelty import novelties_in
from ..observability import logger
from .report import PollReport


@dataclass
class NoveltyLog:
    """Records each novelty on a listed item once (``Markers.record_novelty``). ``known`` is
    what this warm instance already recorded or found recorded: a field Lucca now sends on every
    document costs one conditional write per cold start, not one per document per poll."""

    markers: Markers
    known: set[str]

    def note(self, listed: ListedDocument, report: PollReport) -> None:
        if listed.item is None:
            return
        for novelty in novelties_in(listed.item):
            name = f"{novelty.kind}:{novelty.key}"
            if name in self.known:
                continue
            try:
                new = self.markers.record_novelty(novelty)
            except ClientError:
                # Telling is worth less than queueing: the next run tries again.
                logger.warning("novelty not recorded", exc_info=True, extra={"novelty": name})
                continue
            self.known.add(name)
            if new:
                report.novelties.append(name)
                # Info, not a warning: nothing is wrong yet; the digest tells a person.
                logger.info(
                    "Lucca sent something new",
                    extra={
                        "novelty": name,
                        "example": novelty.example,
                        "documentId": novelty.document_id,
                    },
                )

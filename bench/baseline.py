"""The naive baseline: the walkthrough done literally, with plain httpx.

A count request, then pages of 100 until the items retrieved equal the count; then, on two
threads (concurrency 2, like ours), for each document a GET, a PUT of the complete write shape
(every time, changed or not), and the book. No pacing at all: a 429 is retried after its
``Retry-After``. It fills the same two fields the example rules fill (the bench runs ours
with them), so it books the same inbox into the same state.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import httpx

from bench.figures import RunFigures, figures_from
from bench.scenario import ProgressTicker, Scenario

INBOX = "/cleemy-procurement/services/inbox"
DOCUMENT = "/cleemy-procurement/services/inbox-documents/{id}"
PAGE_SIZE = 100  # the walkthrough's page size
WORKERS = 2
#: A 429 is retried this many times before the document is given up (never reached here).
MAX_ATTEMPTS = 50
#: Read-shape fields a PUT must not carry (``owner`` is written as ``ownerId``).
READ_ONLY = frozenset(
    {"id", "attachments", "ocrStatus", "createdAt", "modifiedAt", "author", "modifier", "owner"}
    | {"documentBreakdown"}
)


@dataclass
class BaselineRun:
    figures: RunFigures
    throttled_waits: int
    waited_seconds: float
    failed: list[str] = field(default_factory=list)
    wall_seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "figures": self.figures.as_dict(),
            "throttledWaits": self.throttled_waits,
            "waitedSeconds": round(self.waited_seconds, 3),
            "failed": self.failed,
            "wallSeconds": round(self.wall_seconds, 3),
        }


class NaiveClient:
    """One "instance": a plain httpx client that only knows to wait out a 429."""

    def __init__(self, base_url: str, api_key: str) -> None:
        self.http = httpx.Client(
            base_url=base_url,
            headers={"Authorization": f"lucca application={api_key}", "Accept": "application/json"},
            timeout=10.0,
        )
        self.throttled = 0
        self.waited = 0.0

    def send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        for _ in range(MAX_ATTEMPTS):
            response = self.http.request(method, path, **kwargs)
            if response.status_code != 429:
                response.raise_for_status()
                return response
            pause = float(response.headers.get("Retry-After", "1"))
            self.throttled += 1
            self.waited += pause
            time.sleep(pause)
        raise RuntimeError(f"{method} {path}: still 429 after {MAX_ATTEMPTS} attempts")

    def close(self) -> None:
        self.http.close()


def list_ids(client: NaiveClient) -> list[int]:
    """Step 1 of the walkthrough: the count, then pages from 1 until that many were read."""
    count = client.send("GET", INBOX, params={"fields.root": "count"}).json()["count"]
    ids: list[int] = []
    page = 1
    while len(ids) < count:
        items = client.send("GET", INBOX, params={"limit": PAGE_SIZE, "page": page}).json()
        if not items["items"]:
            break
        ids += [item["id"] for item in items["items"]]
        page += 1
    return ids


def write_shape(item: dict[str, Any]) -> dict[str, Any]:
    """The complete PUT body from a GET: read-only fields out, ``ownerId``, the purchase as id
    and type, and the example rules' two fills (label from the number, due date +30 days)."""
    document = {k: v for k, v in item["document"].items() if k not in READ_ONLY}
    owner = item["document"].get("owner")
    document["ownerId"] = owner["id"] if owner else None
    purchase = (document.get("context") or {}).get("purchase")
    if purchase:
        document["context"] = {"purchase": {"id": purchase["id"], "type": purchase.get("type")}}
    if not document.get("accountingLabel") and document.get("documentNumber"):
        document["accountingLabel"] = document["documentNumber"]
    if document.get("dueDate") is None and document.get("documentDate"):
        issued = date.fromisoformat(document["documentDate"])
        document["dueDate"] = (issued + timedelta(days=30)).isoformat()
    return {"document": document}


def process(client: NaiveClient, document_id: int) -> None:
    """Steps 2 and 3, literally: GET, PUT every time, then book."""
    path = DOCUMENT.format(id=document_id)
    item = client.send("GET", path).json()
    client.send("PUT", path, json=write_shape(item))
    client.send("POST", path + "/book", content=b"", headers={"Content-Length": "0"})


def _worker(client: NaiveClient, work: queue.Queue[int], failed: list[str]) -> None:
    while True:
        try:
            document_id = work.get_nowait()
        except queue.Empty:
            return
        try:
            process(client, document_id)
        except (httpx.HTTPError, RuntimeError) as error:
            failed.append(f"{document_id}: {error}")


def run_baseline(scenario: Scenario) -> BaselineRun:
    with scenario.simulator() as sim:
        clients = [NaiveClient(sim.url, sim.api_key) for _ in range(WORKERS)]
        failed: list[str] = []
        started = time.perf_counter()
        with ProgressTicker(f"baseline/{scenario.key}", sim, scenario.documents):
            work: queue.Queue[int] = queue.Queue()
            for document_id in list_ids(clients[0]):
                work.put(document_id)
            threads = [
                threading.Thread(target=_worker, args=(client, work, failed)) for client in clients
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        wall = time.perf_counter() - started
        for client in clients:
            with contextlib.suppress(Exception):
                client.close()
        figures = figures_from(scenario, sim.state(), sim.requests())
    return BaselineRun(
        figures,
        throttled_waits=sum(c.throttled for c in clients),
        waited_seconds=sum(c.waited for c in clients),
        failed=failed,
        wall_seconds=wall,
    )

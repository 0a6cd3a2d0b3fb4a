"""Where Lucca's inbox API is, and which base URLs we accept: facts the configuration checks
at cold start too, without importing the HTTP client."""

from __future__ import annotations

from urllib.parse import urlsplit

INBOX_PATH = "/cleemy-procurement/services/inbox"
#: The PUT and book URLs' document (published). A GET on it is only inferred (lucca-api.md
#: "Inferences"): used to read one document only when the published read is refused.
DOCUMENT_PATH = "/cleemy-procurement/services/inbox-documents/{id}"
#: The published read of one document ("Retrieve a document by its ID"): it answers an inbox
#: item's ``document`` part, keyed by the document's id (which id that is: see ``reading``).
PUBLISHED_DOCUMENT_PATH = "/cleemy-procurement/api/documents/{id}"
BOOK_PATH = "/cleemy-procurement/services/inbox-documents/{id}/book"
#: Where a booked document shows later (published; Lucca's guide writes it without ``/api/``):
#: filters ``createdAt.from`` and the conformity states, v4 paging (see ``poller.settling``).
BOOKED_DOCUMENTS_PATH = "/cleemy-procurement/api/booked-documents"
#: Lucca's v4 endpoints serve at most this many items a page.
MAX_PAGE_SIZE = 1000
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


def validate_base_url(base_url: str) -> str:
    """HTTPS only, except on loopback where the simulator runs; no path, query or credentials."""
    parts = urlsplit(base_url.strip())
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(f"Lucca base URL must be an absolute http(s) URL, got {base_url!r}")
    if parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
        raise ValueError(f"Lucca base URL must use https (http only on loopback): {base_url!r}")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ValueError("Lucca base URL must not carry credentials, a query or a fragment")
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"

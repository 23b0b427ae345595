"""What each problem the service can answer means and how to fix it, and its HTML page.

Every RFC 9457 answer carries ``"type": "/problems/<slug>"`` (:data:`api.errors.PROBLEM_BASE`):
a relative reference with the full path, as RFC 9457 section 3.1.1 recommends when the type is
not absolute. Relative because the service does not know the address clients reach it by
(proxies, several host names), and deriving one from the request's ``Host`` would make a
problem's identity change with the header a client sends; the reference resolves against the
request's URL to this service's own page. :data:`CATALOG` holds one entry for every slug the
service can emit (``tests/api/test_problem_pages.py`` enumerates them), and :func:`page`
renders it from ``page.html``.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from functools import cache
from importlib import resources
from string import Template

from api.errors import PROBLEM_BASE


@dataclass(frozen=True, slots=True)
class ProblemType:
    slug: str
    status: int
    title: str
    meaning: str
    fix: str

    @property
    def uri(self) -> str:
        return PROBLEM_BASE + self.slug


_ENTRIES = (
    ProblemType(
        "bad-request",
        400,
        "Bad request",
        "The request cannot be served as it was sent.",
        "Read the detail, correct the request and send it again.",
    ),
    ProblemType(
        "calendar-push-refused",
        403,
        "Notification refused",
        "A calendar notification (POST /v1/calendar-push/google or /microsoft) did not prove it "
        "comes from one of this service's push channels: its channel or subscription is unknown, "
        "or it does not carry that channel's token (X-Goog-Channel-Token, clientState). Which of "
        "the two is never said. Nothing was queued.",
        "Only calendar providers call these addresses, for channels the service made itself. A "
        "channel of a paused or deleted connection is forgotten: its notifications are refused "
        "until the connection is active again and new channels are made.",
    ),
    ProblemType(
        "link-gone",
        410,
        "Link no longer valid",
        "The call link was revoked by the helpdesk, or it expired: an unused link stops booking "
        "at its expires_at, a used one a day after its call.",
        "Ask the helpdesk for a new link (POST /v1/tickets/{ticket_id}/call-links issues one).",
    ),
    ProblemType(
        "link-used",
        409,
        "Link already used",
        "A call was already booked through this link: a link books once, then it is the handle "
        "of that call (reschedule or cancel it there).",
        "Open the link again: it shows the booked call. To book another call, issue a new link.",
    ),
    ProblemType(
        "invalid-input",
        422,
        "Invalid input",
        "Part of the request is not valid: a field is missing, has the wrong type or is out of "
        "range, names something that does not exist, or a query parameter is not one the "
        "operation takes. Each offending field is listed in errors[] with the reason (body "
        "fields bare, others prefixed: query.limit, path.ticket_id, header.content-type); "
        "imports add the row.",
        "Change each field named in errors[] as its reason says and send the request again. "
        "Nothing was written.",
    ),
    ProblemType(
        "idempotency-mismatch",
        422,
        "Idempotency key reused with a different request",
        "The Idempotency-Key was used before by this API key with a different request (another "
        "method, path or body). The first request's answer stays stored for that key.",
        "Use a new key for a new request; reuse a key only to retry exactly the same request.",
    ),
    ProblemType(
        "not-found",
        404,
        "Not found",
        "The object the path names does not exist for your tenant (or the path is not one "
        "this service answers). Objects of other tenants are never visible.",
        "Check the id and the path; list the collection to find the object.",
    ),
    ProblemType(
        "method-not-allowed",
        405,
        "Method not allowed",
        "The path exists but does not take this HTTP method. The Allow header lists the "
        "methods it takes.",
        "Use one of the methods in the Allow header.",
    ),
    ProblemType(
        "conflict",
        409,
        "Conflict",
        "The request contradicts the current state: an id already taken, an object still "
        "referred to, a write that lost a race with another, or a representation read before "
        "the object changed (errors[] names the fields).",
        "Read the object again, then decide whether to send the request again.",
    ),
    ProblemType(
        "idempotency-in-progress",
        409,
        "Conflict",
        "A request with this Idempotency-Key is still being served; its answer is not ready.",
        "Wait a moment and retry with the same key: you will get the first request's answer.",
    ),
    ProblemType(
        "idempotency-unreadable",
        409,
        "Conflict",
        "The answer stored for this Idempotency-Key cannot be replayed.",
        "Check whether the first request took effect (read the object), then use a new key.",
    ),
    ProblemType(
        "slot-unavailable",
        409,
        "Slot not available",
        "The slot asked for can no longer be booked (another booking took the last qualified "
        "agent, or the time is outside the bookable window). The answer says the rule that "
        "refused it and lists the nearest open starts.",
        "Book one of the alternatives in the answer, or ask for the open slots again.",
    ),
    ProblemType(
        "unauthenticated",
        401,
        "Unauthenticated",
        "The request carries no API key, or one that is unknown or revoked.",
        "Send 'Authorization: Bearer <api key>' with a valid key of your tenant.",
    ),
    ProblemType(
        "forbidden",
        403,
        "Forbidden",
        "The API key is valid but lacks the scope the operation needs (helpdesk, planner or "
        "admin; admin passes every check). Each operation's security requirement in the "
        "OpenAPI document names its scope.",
        "Use a key with the named scope, or have an admin mint one.",
    ),
    ProblemType(
        "payload-too-large",
        413,
        "Payload too large",
        "The request's body is larger than this operation accepts (the limit is in the detail).",
        "Send a smaller body: split an import into several.",
    ),
    ProblemType(
        "unsupported-media-type",
        415,
        "Unsupported media type",
        "The body was sent in a media type the operation does not take (for example JSON sent "
        "as text/plain, or with no Content-Type). The detail and errors[] name the types it "
        "takes; a PATCH also says them in Accept-Patch.",
        "Send the Content-Type the operation takes, usually 'Content-Type: application/json'.",
    ),
    ProblemType(
        "rate-limited",
        429,
        "Too many requests",
        "Your tenant is over one of its own limits (requests per second, concurrent solves).",
        "Wait the seconds Retry-After says, then retry; spread requests out.",
    ),
    ProblemType(
        "overloaded",
        503,
        "Service unavailable",
        "Capacity shared by every tenant (the solve pool) is in use right now. Not your doing.",
        "Retry after the seconds Retry-After says.",
    ),
    ProblemType(
        "unavailable",
        503,
        "Service unavailable",
        "The database is busy or not answering, so the request was not served. Nothing was "
        "written.",
        "Retry after the seconds Retry-After says.",
    ),
    ProblemType(
        "http-error",
        400,
        "HTTP error",
        "The HTTP layer refused the request before it reached an operation (its status says how).",
        "Read the status and the detail, correct the request and send it again.",
    ),
    ProblemType(
        "internal",
        500,
        "Internal server error",
        "An unexpected error occurred on our side. It has been logged.",
        "Retry later; if it persists, report it with the time and the instance path.",
    ),
)

CATALOG: dict[str, ProblemType] = {entry.slug: entry for entry in _ENTRIES}


@cache
def _template() -> Template:
    return Template(resources.files(__package__).joinpath("page.html").read_text("utf-8"))


def page(problem: ProblemType) -> str:
    """The HTML page of ``problem``."""
    status = "4xx" if problem.slug == "http-error" else str(problem.status)
    content = (
        "<dl>\n"
        f"<dt>Type</dt><dd><code>{html.escape(problem.uri)}</code></dd>\n"
        f"<dt>HTTP status</dt><dd>{status}</dd>\n"
        f"<dt>What it means</dt><dd>{html.escape(problem.meaning)}</dd>\n"
        f"<dt>How to fix it</dt><dd>{html.escape(problem.fix)}</dd>\n"
        "</dl>"
    )
    return _template().substitute(title=html.escape(problem.title), content=content)


def index() -> str:
    """The HTML page listing every problem type."""
    items = "\n".join(
        f'<li><a href="{html.escape(p.uri)}"><code>{html.escape(p.slug)}</code></a>: '
        f"{html.escape(p.title)}</li>"
        for p in _ENTRIES
    )
    content = (
        "<p>Every error this API answers is an RFC 9457 problem (application/problem+json) "
        "whose <code>type</code> is one of these.</p>\n"
        f"<ul>\n{items}\n</ul>"
    )
    return _template().substitute(title="Problem types", content=content)

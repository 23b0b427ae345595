"""/c/{token}: the pages a customer's single-use call link opens (HTML, no API key).

One page per phase of the link (:class:`api.links.service.Phase`): the slot picker, the
confirmation, the waiting room, the cancelled or finished call. Everything a page says comes
from the links service (``resolve``, ``open_slots``, ``view``); everything it changes goes
through it too (``book``, ``reschedule``, ``cancel``: single use, the tenant lock and the
anti-forgery token are the service's). A GET never changes a link or a call.

Refusals are pages, never error documents: a start just taken is the picker again (409) with
the nearest open starts first; bad input is the page again (422) saying what was wrong. Every
lookup first asks the failed-lookup limiter (:mod:`api.links.limiter`) about the client's
address (429 + ``Retry-After``); an unknown token (404, the same bytes whatever the token) or a
gone link (410) counts as a failure. Headers: :mod:`api.customer.headers`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api.bookings import service as bookings
from api.bookings.service import BookingRefused
from api.customer import logs, pages, stream
from api.customer.headers import PREFIX
from api.errors import Conflict, InvalidInput, ServiceError
from api.links import service as links
from api.links import tokens
from api.links.routes import customer_url
from api.links.service import LinkGone, LinkUnknown, LinkUsed, Phase, Resolved, View
from solver.capability import Slot

router = APIRouter(prefix=PREFIX, include_in_schema=False, default_response_class=HTMLResponse)
STATIC = Path(__file__).parent / "static"
MAX_FORM_FIELDS = 10


class PageAnswer(Exception):
    """A finished answer (a 404, 410, 429 or 415 page) raised from below a route."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


async def _page_answer(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PageAnswer)
    return exc.response


def install(app: FastAPI) -> None:
    """Mount the static files and the pages (the static files first: ``/c/static/x`` is a
    file, not a link's sub-page)."""
    app.state.customer_streams = stream.Streams()
    logs.install()  # the tokens in /c paths stay out of uvicorn's access log
    app.mount(f"{PREFIX}/static", StaticFiles(directory=STATIC), name="customer-static")
    app.include_router(router)
    app.add_exception_handler(PageAnswer, _page_answer)


# --------------------------------------------------------------------------- plumbing


def _message(status: int, page_id: str, title: str, text: str, **headers: str) -> HTMLResponse:
    body = pages.render("message.html", page_id=page_id, title=title, text=text)
    return HTMLResponse(body, status_code=status, headers=headers or None)


def not_found() -> HTMLResponse:
    # Says nothing of the token: a random one, a malformed one and another tenant's one give
    # the same bytes.
    return _message(404, "not-found", "Page not found", "There is no page at this address.")


def gone() -> HTMLResponse:
    return _message(
        410,
        "gone",
        "This link is no longer valid",
        "It has expired or was withdrawn. If you still need a call, please ask your support "
        "contact for a new link.",
    )


def too_many(seconds: int) -> HTMLResponse:
    return _message(
        429,
        "too-many",
        "Too many attempts",
        f"Too many unknown links were opened from your address. Please try again in "
        f"{seconds} seconds.",
        **{"Retry-After": str(seconds)},
    )


def _address(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


def _refuse_if_limited(request: Request) -> None:
    wait = request.app.state.link_limiter.retry_after(_address(request))
    if wait is not None:
        raise PageAnswer(too_many(wait))


def _failed(request: Request, exc: LinkUnknown | LinkGone) -> PageAnswer:
    request.app.state.link_limiter.failed(_address(request))
    return PageAnswer(not_found() if isinstance(exc, LinkUnknown) else gone())


def lookup(request: Request, session: Session, token: str, now: datetime) -> Resolved:
    """The link ``token`` opens; a 429, 404 or 410 page (raised) otherwise."""
    _refuse_if_limited(request)
    try:
        return links.resolve(session, token, now)
    except (LinkUnknown, LinkGone) as exc:
        raise _failed(request, exc) from None


@contextmanager
def _session(request: Request, *, write: bool = False) -> Iterator[Session]:
    """A unit of work of its own (writes begin with SQLite's write lock, as every write
    request's does): the Idempotency-Key machinery is the API's, not the pages'."""
    state = request.app.state
    with state.session_factory(bind=state.write_engine if write else state.engine) as session:
        yield session


def _now(request: Request) -> datetime:
    now: datetime = request.app.state.clock()
    return now


async def _form(request: Request) -> dict[str, str]:
    """The posted form (``application/x-www-form-urlencoded``, what a browser's form sends)."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != "application/x-www-form-urlencoded":
        raise PageAnswer(
            _message(
                415,
                "unsupported",
                "This page takes a form",
                "Please use the page's own buttons.",
            )
        )
    body = await request.body()
    try:
        pairs = parse_qsl(
            body.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS
        )
    except (UnicodeDecodeError, ValueError):
        raise PageAnswer(
            _message(400, "bad-form", "Something went wrong", "Please go back and try again.")
        ) from None
    return dict(pairs)


FormDep = Annotated[dict[str, str], Depends(_form)]
# Checked by the page (pages.shown), which says what was wrong in its own words.
Tz = Annotated[str | None, Query()]
Lang = Annotated[str | None, Query()]


def _paths(token: str) -> dict[str, str]:
    base = f"{PREFIX}/{token}"
    return {
        "base": base,
        "book": f"{base}/book",
        "reschedule": f"{base}/reschedule",
        "cancel": f"{base}/cancel",
        "ics": f"{base}/call.ics",
        "events": f"{base}/events",
        "status": f"{base}/status",
    }


def _query(how: pages.Shown, link_tz: str) -> str:
    """The query that keeps the customer's zone and language on the next page."""
    params = {}
    if how.tz != link_tz:
        params["tz"] = how.tz
    if how.lang_override is not None:
        params["lang"] = how.lang_override
    return f"?{urlencode(params)}" if params else ""


def _how(found: Resolved, tz: str | None, lang: str | None) -> pages.Shown:
    return pages.shown(found.link.timezone, found.link.locale, tz, lang)


def _picker(
    request: Request,
    session: Session,
    view: View,
    how: pages.Shown,
    now: datetime,
    *,
    action: str,
    button: str,
    taken: Sequence[Slot] = (),
    picked: str | None = None,
) -> pages.Picker:
    answer = links.open_slots(
        session=session,
        link=view.link,
        now=now,
        tz=how.tz,
        cache=request.app.state.booking_cache,
    )
    return pages.picker(
        action=action,
        form_token=tokens.form_token(view.link.form_key, view.link.id),
        how=how,
        slots=answer.slots,
        alternatives=taken,
        button=button,
        picked=picked,
    )


def render_link(
    request: Request,
    session: Session,
    token: str,
    found: Resolved,
    now: datetime,
    how: pages.Shown,
    *,
    status: int = 200,
    notice: tuple[str, str] | None = None,
    error: str | None = None,
    taken: Sequence[Slot] = (),
    picked: str | None = None,
    moving: bool = False,
) -> HTMLResponse:
    """The link's page for its phase (``moving``: the reschedule picker, when allowed)."""
    view = links.view(session, found, now)
    paths = _paths(token)
    if moving and not view.can_reschedule and notice is None:
        words = "can no longer be moved" if view.call is not None else "is not booked yet"
        notice = ("not-movable", f"Your call {words}: there is nothing to move.")
    errors = [*how.errors, *([error] if error else [])]
    if errors and status == 200:
        status = 422
    context: dict[str, Any] = {
        "view": view,
        "phase": view.phase.value,
        "paths": paths,
        "query": _query(how, found.link.timezone),
        "how": how,
        "zone_label": how.zone_label(now),
        "zones": pages.zones(how.tz, found.link.timezone),
        "lang": how.lang,
        "call": pages.call_words(view, how),
        "form_token": tokens.form_token(found.link.form_key, found.link.id),
        "display_name": found.link.display_name,
        "errors": errors,
        "notice": notice,
        "picker": None,
        "script": False,
    }

    def picker(action: str, button: str) -> pages.Picker:
        return _picker(
            request,
            session,
            view,
            how,
            now,
            action=action,
            button=button,
            taken=taken,
            picked=picked,
        )

    if moving and view.can_reschedule:
        template = "reschedule.html"
        context["picker"] = picker(paths["reschedule"], "Move my call to this time")
    elif view.phase is Phase.PICK:
        template = "pick.html"
        context["picker"] = picker(paths["book"], "Book this time")
    elif view.phase is Phase.BOOKED:
        template = "confirmation.html"
        context["script"] = True  # /status once a minute: the room opening, a cancellation
    elif view.phase in pages.ROOM_PHASES:
        template = "room.html"
        context["script"] = True
        if view.phase is Phase.AT_RISK and view.can_reschedule:
            context["picker"] = picker(paths["reschedule"], "Move my call to this time")
    elif view.phase is Phase.CANCELLED:
        template = "cancelled.html"
        context["reason"] = pages.CANCEL_WORDS.get(view.cancel_reason, pages.CANCEL_WORDS[None])
    else:
        template = "over.html"
    return HTMLResponse(pages.render(template, **context), status_code=status)


def _refusal(exc: ServiceError) -> str:
    """A refusal in the customer's words: the service's reason for the field it names."""
    if exc.errors:
        return f"{exc.errors[0].reason[:1].upper()}{exc.errors[0].reason[1:]}."
    return f"{exc.detail[:1].upper()}{exc.detail[1:]}."


def _parse_start(raw: str | None) -> datetime:
    if not raw:
        raise InvalidInput.one("start", "please choose a time")
    try:
        start = datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidInput.one("start", "please choose one of the times shown") from None
    if start.tzinfo is None:
        raise InvalidInput.one("start", "please choose one of the times shown")
    return start


# --------------------------------------------------------------------------- pages


@router.get("/{token}")
def link_page(request: Request, token: str, tz: Tz = None, lang: Lang = None) -> HTMLResponse:
    now = _now(request)
    with _session(request) as session:
        found = lookup(request, session, token, now)
        return render_link(request, session, token, found, now, _how(found, tz, lang))


@router.get("/{token}/reschedule")
def reschedule_page(request: Request, token: str, tz: Tz = None, lang: Lang = None) -> HTMLResponse:
    now = _now(request)
    with _session(request) as session:
        found = lookup(request, session, token, now)
        how = _how(found, tz, lang)
        return render_link(request, session, token, found, now, how, moving=True)


def _write(request: Request, token: str, form: dict[str, str], *, verb: str) -> Response:
    """``book``, ``reschedule`` or ``cancel`` through the links service; then 303 to the
    link's page, or the page again saying why not.

    Three units of work: the lookup reads; the write opens with the tenant's lock and does
    only the write; the page saying why not reads again. On SQLite a unit of work that writes
    waits for every other writer, so neither the reads before nor the page after wait in that
    queue: in a burst of 200 customers for one start, the 190 refused are answered from reads
    (figures: benchmarks/README.md, Booking race)."""
    now = _now(request)
    with _session(request) as session:
        found = lookup(request, session, token, now)
        how = _how(found, form.get("tz") or None, form.get("lang") or None)
        if how.errors:  # the zone the starts were picked in must be a real one
            return render_link(
                request, session, token, found, now, how, moving=verb == "reschedule"
            )
        query = _query(how, found.link.timezone)
        known = found.known()
        picked = form.get("start")
        refused: ServiceError | None = None
        if verb == "book" and found.link.booking_id is None and picked:
            # A start the engine already refused in the state as committed: answered from
            # this read, without queueing for the tenant's lock (bookings.known_refusal).
            with contextlib.suppress(InvalidInput):
                refused = bookings.known_refusal(
                    session=session,
                    tenant_id=found.link.tenant_id,
                    capability_id=found.link.capability_id,
                    start=_parse_start(picked),
                    tz=how.tz,
                    now=now,
                    cache=request.app.state.booking_cache,
                )
            if refused is not None and not tokens.check_form_token(
                found.link.form_key, found.link.id, form.get("form_token")
            ):
                refused = None  # a bad form token is said as such, under the lock
            if isinstance(refused, BookingRefused):  # the page from this same read
                return _taken(request, session, token, found, now, how, refused, verb)
    if refused is None:
        with _session(request, write=True) as session:
            try:
                if verb == "cancel":
                    links.cancel(
                        session=session,
                        token=token,
                        form_token=form.get("form_token"),
                        now=now,
                        known=known,
                    )
                else:
                    act = links.book if verb == "book" else links.reschedule
                    act(
                        session=session,
                        token=token,
                        start=_parse_start(picked),
                        tz=how.tz,
                        form_token=form.get("form_token"),
                        now=now,
                        cache=request.app.state.booking_cache,
                        known=known,
                    )
                session.commit()
            except (LinkUnknown, LinkGone) as exc:
                raise _failed(request, exc) from None
            except (BookingRefused, LinkUsed, InvalidInput, Conflict) as exc:
                session.rollback()
                refused = exc
    if refused is None:
        return RedirectResponse(f"{PREFIX}/{token}{query}", status_code=303)
    with _session(request) as session:
        found = lookup(request, session, token, now)
        if isinstance(refused, BookingRefused):
            return _taken(request, session, token, found, now, how, refused, verb)
        if isinstance(refused, LinkUsed):
            notice = ("already-booked", "A call was already booked through this link: here it is.")
            return render_link(request, session, token, found, now, how, status=409, notice=notice)
        return render_link(
            request,
            session,
            token,
            found,
            now,
            how,
            status=refused.status,
            error=_refusal(refused),
            picked=picked,
            moving=verb == "reschedule",
        )


def _taken(
    request: Request,
    session: Session,
    token: str,
    found: Resolved,
    now: datetime,
    how: pages.Shown,
    refused: BookingRefused,
    verb: str,
) -> HTMLResponse:
    """The picker again (409), saying the time was just taken, the nearest open times first."""
    notice = ("taken", "That time was just taken: the nearest open times come first.")
    return render_link(
        request,
        session,
        token,
        found,
        now,
        how,
        status=409,
        notice=notice,
        taken=refused.alternatives,
        moving=verb == "reschedule",
    )


@router.post("/{token}/book")
def book(request: Request, token: str, form: FormDep) -> Response:
    return _write(request, token, form, verb="book")


@router.post("/{token}/reschedule")
def reschedule(request: Request, token: str, form: FormDep) -> Response:
    return _write(request, token, form, verb="reschedule")


@router.post("/{token}/cancel")
def cancel(request: Request, token: str, form: FormDep) -> Response:
    return _write(request, token, form, verb="cancel")


@router.get("/{token}/call.ics")
def calendar_file(request: Request, token: str, tz: Tz = None, lang: Lang = None) -> Response:
    now = _now(request)
    with _session(request) as session:
        found = lookup(request, session, token, now)
        view = links.view(session, found, now)
        if view.call is None:
            notice = ("nothing-booked", "Nothing is booked through this link yet.")
            how = _how(found, tz, lang)
            return render_link(request, session, token, found, now, how, status=409, notice=notice)
        url = customer_url(request.app.state.settings.public_base_url, token)
        body = links.ics(view, url=url, now=now)
    return Response(
        body,
        media_type="text/calendar; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="call.ics"'},
    )


# --------------------------------------------------------------------------- the waiting room


def _status_now(request: Request, token: str) -> dict[str, str] | None:
    """What the room shows now, read in a short unit of work of its own; None once the link
    opens nothing (gone, or unknown)."""
    now = _now(request)
    with _session(request) as session:
        try:
            found = links.resolve(session, token, now)
        except (LinkUnknown, LinkGone):
            return None
        return pages.status_json(links.view(session, found, now))


@router.get("/{token}/status", response_class=JSONResponse)
def status(request: Request, token: str) -> JSONResponse:
    now = _now(request)
    with _session(request) as session:
        found = lookup(request, session, token, now)
        return JSONResponse(pages.status_json(links.view(session, found, now)))


@router.get("/{token}/events")
async def events(request: Request, token: str) -> Response:
    def first() -> dict[str, str]:
        now = _now(request)
        with _session(request) as session:
            found = lookup(request, session, token, now)
            return pages.status_json(links.view(session, found, now))

    opening = await run_in_threadpool(first)
    return stream.response(request, opening, lambda: _status_now(request, token))


@router.api_route("/{rest:path}", methods=["GET", "POST"])
def nothing_here(rest: str) -> HTMLResponse:
    """Any other address a browser may ask for under /c: the same 404 page as an unknown
    token, never the API's problem document echoing the path. Nothing is looked up, so
    nothing counts against the limiter (a HEAD or a GET of a link's POST-only address must
    not lock its customer out)."""
    return not_found()

"""The operations every organisation resource shares, registered by one factory.

Skills, teams, agents, shifts, busy intervals and capabilities each offer the same six
operations with the same shape::

    POST   /v1/<things>              201  create one
    POST   /v1/<things>/import       201  create many, all or nothing (JSON or CSV)
    GET    /v1/<things>              200  one page, ordered by id (plus the resource's filters)
    GET    /v1/<things>/{<thing>_id} 200  read one
    PATCH  /v1/<things>/{<thing>_id} 200  change the fields given
    DELETE /v1/<things>/{<thing>_id} 204  remove one

:func:`crud_router` registers them on a new router; a resource module passes its schemas, its
service module and its summaries, and adds what only it has (agents' PATCH re-routes tickets of
an agent who leaves) next to it.

The service module keeps its own verbs: ``create(session=, tenant_id=, data=, now=)``,
``create_many(session=, tenant_id=, rows=, now=)`` (all or nothing, for imports),
``list(session=, tenant_id=, cursor=, limit=, **filters)`` and ``get_or_raise`` / ``update`` /
``delete`` taking the id as ``<noun>_id=`` — the same keyword as the path parameter.

No ``from __future__ import annotations`` here: the endpoints below are annotated with the
factory's arguments (``body: create``), which FastAPI must see as classes, not as strings it
would look up in this module's globals. (mypy, which checks only ``solver/``, would call such
annotations invalid types; they are what FastAPI needs.)
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Depends, Path, Response
from pydantic import BaseModel

from api.db.models import ID_LENGTH
from api.deps import (
    IMPORT_OPENAPI,
    ImportRowsDep,
    NowDep,
    PageDep,
    PlannerAuth,
    ReadAuth,
    SessionDep,
    SettingsDep,
)
from api.schemas.common import ID_PATTERN, ImportResult, Page
from api.schemas.problem import PROBLEM_RESPONSES
from api.services import bulk

Filters = dict[str, Any]


class OutSchema(Protocol):
    """A response schema built from a database row (every ``*Out`` has ``from_row``)."""

    @classmethod
    def from_row(cls, row: Any) -> Any: ...


@dataclass(frozen=True, slots=True)
class Summaries:
    """The OpenAPI summary of each operation (what the docs list)."""

    create: str
    import_: str
    list: str
    read: str
    update: str
    delete: str


def no_filters() -> Filters:
    return {}


def crud_router(
    *,
    prefix: str,
    tag: str,
    noun: str,
    nouns: str,
    service: Any,  # a module or object with the six verbs (api.services.intervals)
    create: type[BaseModel],
    update: type[BaseModel],
    out: type[OutSchema],
    summaries: Summaries,
    list_filters: Callable[..., Filters] = no_filters,
    update_endpoint: Callable[..., Any] | None = None,
    read_auth: Any = ReadAuth,
    write_auth: Any = PlannerAuth,
) -> APIRouter:
    """A router with the six operations of the resource ``noun`` (plural ``nouns``).

    ``list_filters`` is a dependency whose query parameters narrow the list; it returns them
    as keyword arguments for ``service.list``. ``update_endpoint`` replaces the generic PATCH
    endpoint (same path, name, summary and place among the routes) where a resource does more.
    ``read_auth`` / ``write_auth`` are the auth dependencies (``api.deps``) of reads / writes.
    Endpoint names (hence operationIds) are ``create_<noun>``, ``import_<nouns>``, ...
    """
    router = APIRouter(prefix=prefix, tags=[tag], responses=PROBLEM_RESPONSES)
    id_name = f"{noun}_id"
    item = "/{" + id_name + "}"
    # The path parameter is called like the service's keyword (``skill_id``); the endpoints
    # take it as ``ident`` under that alias.
    ItemId = Annotated[
        str,
        Path(
            alias=id_name,
            min_length=1,
            max_length=ID_LENGTH,
            pattern=ID_PATTERN,
            description="The object's id",
        ),
    ]
    FiltersDep = Annotated[Filters, Depends(list_filters)]

    def create_one(body: create, session: SessionDep, auth: write_auth, now: NowDep) -> out:
        row = service.create(session=session, tenant_id=auth.tenant_id, data=body, now=now)
        session.commit()
        return out.from_row(row)

    def import_many(
        rows: ImportRowsDep,
        session: SessionDep,
        auth: write_auth,
        now: NowDep,
        settings: SettingsDep,
    ) -> ImportResult:
        ids = bulk.import_rows(
            rows,
            create,
            lambda valid: service.create_many(
                session=session, tenant_id=auth.tenant_id, rows=valid, now=now
            ),
            max_rows=settings.bulk_max_rows,
        )
        session.commit()
        return ImportResult(imported=len(ids), ids=ids)

    # ``filters`` after ``page``: FastAPI validates dependencies in this order, so a 422 lists
    # the page's errors first, as it did when the filters were the endpoint's own parameters.
    def list_page(
        session: SessionDep,
        auth: read_auth,
        page: PageDep,
        filters: FiltersDep,
    ) -> Page[out]:
        rows, cursor = service.list(
            session=session,
            tenant_id=auth.tenant_id,
            cursor=page.cursor,
            limit=page.limit,
            **filters,
        )
        return Page(items=[out.from_row(r) for r in rows], next_cursor=cursor)

    def read_one(ident: ItemId, session: SessionDep, auth: read_auth) -> out:
        row = service.get_or_raise(session=session, tenant_id=auth.tenant_id, **{id_name: ident})
        return out.from_row(row)

    def update_one(
        ident: ItemId,
        body: update,
        session: SessionDep,
        auth: write_auth,
        now: NowDep,
    ) -> out:
        row = service.update(
            session=session, tenant_id=auth.tenant_id, data=body, now=now, **{id_name: ident}
        )
        session.commit()
        return out.from_row(row)

    def delete_one(ident: ItemId, session: SessionDep, auth: write_auth) -> Response:
        service.delete(session=session, tenant_id=auth.tenant_id, **{id_name: ident})
        session.commit()
        return Response(status_code=204)

    router.add_api_route(
        "",
        create_one,
        methods=["POST"],
        name=f"create_{noun}",
        status_code=201,
        summary=summaries.create,
    )
    router.add_api_route(
        "/import",
        import_many,
        methods=["POST"],
        name=f"import_{nouns}",
        status_code=201,
        summary=summaries.import_,
        openapi_extra=IMPORT_OPENAPI,
    )
    router.add_api_route(
        "", list_page, methods=["GET"], name=f"list_{nouns}", summary=summaries.list
    )
    router.add_api_route(
        item, read_one, methods=["GET"], name=f"read_{noun}", summary=summaries.read
    )
    router.add_api_route(
        item,
        update_endpoint or update_one,
        methods=["PATCH"],
        name=f"update_{noun}",
        summary=summaries.update,
    )
    router.add_api_route(
        item,
        delete_one,
        methods=["DELETE"],
        name=f"delete_{noun}",
        status_code=204,
        summary=summaries.delete,
    )
    return router

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

The endpoints are typed twice, once for each reader. mypy reads the factory's type variables
(``body: CreateT``, ``-> OutSchema[RowT]``), so each endpoint is checked against the service
and schemas it is given. FastAPI reads types from the signature at registration, where it needs
the resource's own classes, known only when the factory runs: :func:`_for_fastapi` puts them in
the endpoint's annotations. No ``from __future__ import annotations`` here: the annotations left
as written (``ItemId``, ``FiltersDep``) are local to the factory, so FastAPI could not look them
up by name.
"""

import builtins
import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Protocol, Self, TypeVar

from fastapi import APIRouter, Depends, Path, Query, Response
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session

from api.auth import Principal
from api.common import bulk
from api.common.problem import PROBLEM_RESPONSES
from api.common.schemas import (
    ID_PATTERN,
    UPDATED_SINCE_DESCRIPTION,
    ImportResult,
    Page,
    TimestampIn,
)
from api.db.locks import lock_tenant
from api.db.models import ID_LENGTH
from api.errors import Conflict, FieldError, InvalidInput, NotFound, validation_field_errors
from api.http.deps import (
    IMPORT_OPENAPI,
    AdminAuth,
    ImportRowsDep,
    NowDep,
    PageDep,
    ReadAuth,
    SessionDep,
    SettingsDep,
)

Filters = dict[str, Any]

RowT = TypeVar("RowT")
RowT_co = TypeVar("RowT_co", covariant=True)
RowT_contra = TypeVar("RowT_contra", contravariant=True)
CreateT = TypeVar("CreateT", bound=BaseModel)
CreateT_contra = TypeVar("CreateT_contra", bound=BaseModel, contravariant=True)
UpdateT = TypeVar("UpdateT", bound=BaseModel)


class OutSchema(Protocol[RowT_contra]):
    """A response schema built from a database row (every ``*Out`` has ``from_row``)."""

    @classmethod
    def from_row(cls, row: RowT_contra) -> Self: ...


class Service(Protocol[RowT_co, CreateT_contra]):
    """The verbs a resource's service offers (a module, or an object such as
    :data:`api.org.intervals.service.shifts`).

    The verbs that take the row's id take it as a keyword named after the resource
    (``team_id=``), and ``list`` takes the resource's own filters: their parameters are known
    only by name at run time, so only what they return is typed here.
    """

    def create(
        self, *, session: Session, tenant_id: str, data: CreateT_contra, now: datetime
    ) -> RowT_co: ...

    def create_many(
        self, *, session: Session, tenant_id: str, rows: Sequence[CreateT_contra], now: datetime
    ) -> builtins.list[str]: ...

    @property
    def get_or_raise(self) -> Callable[..., RowT_co]: ...

    @property
    def update(self) -> Callable[..., RowT_co]: ...

    @property
    def delete(self) -> Callable[..., None]: ...

    @property
    def list(self) -> Callable[..., tuple[Sequence[RowT_co], str | None]]: ...


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
    service: Service[RowT, CreateT],
    create: type[CreateT],
    update: type[UpdateT],
    out: type[OutSchema[RowT]],
    summaries: Summaries,
    list_filters: Callable[..., Filters] = no_filters,
    update_endpoint: Callable[..., Any] | None = None,
    read_auth: object = ReadAuth,
    write_auth: object = AdminAuth,
    label: tuple[str, str] | None = None,
) -> APIRouter:
    """A router with the six operations of the resource ``noun`` (plural ``nouns``).

    ``list_filters`` is a dependency whose query parameters narrow the list; it returns them
    as keyword arguments for ``service.list``. ``update_endpoint`` replaces the generic PATCH
    endpoint (same path, name, summary and place among the routes) where a resource does more.
    ``read_auth`` / ``write_auth`` are the auth dependencies (``api.http.deps``) of reads / writes.
    ``label`` (singular, plural) names them in the descriptions (default ``noun``, ``nouns``).
    ``service.list`` takes ``updated_since`` (None, or only rows changed at or after it).
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
    UpdatedSince = Annotated[
        TimestampIn | None, Query(description=UPDATED_SINCE_DESCRIPTION.format(nouns=nouns))
    ]

    def create_one(
        body: CreateT, session: SessionDep, auth: Principal, now: NowDep
    ) -> OutSchema[RowT]:
        row = service.create(session=session, tenant_id=auth.tenant_id, data=body, now=now)
        session.commit()
        return out.from_row(row)

    def import_many(
        rows: ImportRowsDep,
        session: SessionDep,
        auth: Principal,
        now: NowDep,
        settings: SettingsDep,
        mode: ImportModeQuery = ImportMode.CREATE,
    ) -> ImportResult:
        def write(valid: builtins.list[CreateT]) -> builtins.list[str]:
            if mode is ImportMode.CREATE:
                return service.create_many(
                    session=session, tenant_id=auth.tenant_id, rows=valid, now=now
                )
            upsert_many = getattr(service, "upsert_many", None)
            if upsert_many is not None:  # the service replaces rows itself (shifts, busy)
                ids: builtins.list[str] = upsert_many(
                    session=session, tenant_id=auth.tenant_id, rows=valid, now=now
                )
                return ids
            return _upsert(service, update, id_name, session, auth.tenant_id, valid, now)

        ids = bulk.import_rows(rows, create, write, max_rows=settings.bulk_max_rows)
        session.commit()
        return ImportResult(imported=len(ids), ids=ids)

    # ``filters`` after ``page``: FastAPI validates dependencies in this order, so a 422 lists
    # the page's errors before the filters', the order clients have always been answered in.
    def list_page(
        session: SessionDep,
        auth: Principal,
        page: PageDep,
        filters: FiltersDep,
        updated_since: UpdatedSince = None,
    ) -> "Page[OutSchema[RowT]]":  # quoted: pydantic would build this model at definition
        rows, cursor = service.list(
            session=session,
            tenant_id=auth.tenant_id,
            cursor=page.cursor,
            limit=page.limit,
            updated_since=updated_since,
            **filters,
        )
        return Page(items=[out.from_row(r) for r in rows], next_cursor=cursor)

    def read_one(ident: ItemId, session: SessionDep, auth: Principal) -> OutSchema[RowT]:
        row = service.get_or_raise(session=session, tenant_id=auth.tenant_id, **{id_name: ident})
        return out.from_row(row)

    def update_one(
        ident: ItemId,
        body: UpdateT,
        session: SessionDep,
        auth: Principal,
        now: NowDep,
    ) -> OutSchema[RowT]:
        row = service.update(
            session=session, tenant_id=auth.tenant_id, data=body, now=now, **{id_name: ident}
        )
        session.commit()
        return out.from_row(row)

    def delete_one(ident: ItemId, session: SessionDep, auth: Principal) -> Response:
        service.delete(session=session, tenant_id=auth.tenant_id, **{id_name: ident})
        session.commit()
        return Response(status_code=204)

    # ``Page[out]``, spelled as the call it is: mypy would read the subscript as a type.
    page_of_out = Page.__class_getitem__(out)
    _for_fastapi(create_one, body=create, auth=write_auth, returns=out)
    _for_fastapi(import_many, auth=write_auth)
    _for_fastapi(list_page, auth=read_auth, returns=page_of_out)
    _for_fastapi(read_one, auth=read_auth, returns=out)
    _for_fastapi(update_one, body=update, auth=write_auth, returns=out)
    _for_fastapi(delete_one, auth=write_auth)

    one, many = label or (noun, nouns)
    router.add_api_route(
        "",
        create_one,
        methods=["POST"],
        name=f"create_{noun}",
        status_code=201,
        summary=summaries.create,
        description=f"Creates one {one} with the id given; an id already taken is a 409.",
    )
    router.add_api_route(
        "/import",
        import_many,
        methods=["POST"],
        name=f"import_{nouns}",
        status_code=201,
        summary=summaries.import_,
        openapi_extra=IMPORT_OPENAPI,
        description=(
            f"Creates many {many} at once, all or nothing (a JSON array, a CSV body or a CSV "
            "upload); a 422 names every refused row."
        ),
    )
    router.add_api_route(
        "",
        list_page,
        methods=["GET"],
        name=f"list_{nouns}",
        summary=summaries.list,
        description=(
            f"One page of the tenant's {many}, ordered by id (by last change, then id, with "
            "updated_since)."
        ),
    )
    router.add_api_route(
        item,
        read_one,
        methods=["GET"],
        name=f"read_{noun}",
        summary=summaries.read,
        description=f"One {one} by its id.",
    )
    router.add_api_route(
        item,
        update_endpoint or update_one,
        methods=["PATCH"],
        name=f"update_{noun}",
        summary=summaries.update,
        description=(update_endpoint.__doc__ if update_endpoint else None)
        or f"Changes the fields given; an omitted field is unchanged (null clears, where "
        f"a {one} may lack it).",
    )
    router.add_api_route(
        item,
        delete_one,
        methods=["DELETE"],
        name=f"delete_{noun}",
        status_code=204,
        summary=summaries.delete,
        description=f"Removes one {one}; a 409 names what still refers to it.",
    )
    return router


class ImportMode(enum.StrEnum):
    CREATE = "create"
    UPSERT = "upsert"


ImportModeQuery = Annotated[
    ImportMode,
    Query(
        description=(
            "`create` (default): every row is new; a stored id is refused. `upsert`: a row "
            "whose id is stored replaces it entirely (fields it leaves out take their "
            "defaults, as in a create), the others are created. Either way all or nothing."
        )
    ),
]


def _upsert(
    service: Service[RowT, CreateT],
    update: type[BaseModel],
    id_name: str,
    session: Session,
    tenant_id: str,
    rows: Sequence[CreateT],
    now: datetime,
) -> builtins.list[str]:
    """An upsert import through the service's own verbs, all or nothing: under the tenant's
    lock, each row whose id is stored is replaced by a PATCH of every field the row has (its
    create's defaults included), the other rows are created with ``create_many``. Raises
    :class:`InvalidInput` naming every refused row by its index in ``rows``."""
    lock_tenant(session, tenant_id)
    errors: builtins.list[FieldError] = []
    seen: set[str] = set()
    new: builtins.list[int] = []
    ids: builtins.list[str | None] = []
    for i, row in enumerate(rows):
        ident = getattr(row, "id", None)
        ids.append(ident)
        if ident is None:
            new.append(i)
            continue
        if ident in seen:
            reason = f"{ident!r} is on an earlier row of this import too"
            errors.append(FieldError("id", reason, i))
            continue
        seen.add(ident)
        try:
            service.get_or_raise(session=session, tenant_id=tenant_id, **{id_name: ident})
        except NotFound:
            new.append(i)
            continue
        fields = row.model_dump(exclude={"id"})
        try:
            patch = update.model_validate(
                {k: v for k, v in fields.items() if k in update.model_fields}
            )
            service.update(
                session=session, tenant_id=tenant_id, data=patch, now=now, **{id_name: ident}
            )
        except ValidationError as exc:
            errors.extend(e.at_row(i) for e in validation_field_errors(exc.errors()))
        except InvalidInput as exc:
            errors.extend(e.at_row(i) for e in exc.errors)
        except (Conflict, NotFound) as exc:
            errors.append(FieldError("id", exc.detail, i))
    if new:
        try:
            created = service.create_many(
                session=session, tenant_id=tenant_id, rows=[rows[i] for i in new], now=now
            )
        except InvalidInput as exc:
            errors.extend(e if e.row is None else e.at_row(new[e.row]) for e in exc.errors)
        else:
            for i, ident in zip(new, created, strict=True):
                ids[i] = ident
    if errors:
        raise InvalidInput(errors)
    return [ident for ident in ids if ident is not None]


def _for_fastapi(endpoint: Callable[..., Any], *, returns: object = None, **params: object) -> None:
    """Annotate ``endpoint``'s parameters ``params`` (and its return type, given ``returns``)
    with the objects FastAPI is to read there: the resource's classes and auth dependencies,
    where mypy reads the factory's type variables."""
    annotations = endpoint.__annotations__
    unknown = params.keys() - annotations.keys()
    if unknown:
        raise TypeError(f"{endpoint.__name__} has no parameter {sorted(unknown)}")
    annotations.update(params)
    if returns is not None:
        annotations["return"] = returns

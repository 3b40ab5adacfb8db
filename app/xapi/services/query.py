"""Reading statements: single statements, filtered pages with the signed keyset `more`
cursor, attachments of a page, the Activities and Agents resources."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer
from marshmallow import ValidationError
from sqlalchemy import (
    Integer,
    Text,
    and_,
    bindparam,
    cast,
    exists,
    literal_column,
    or_,
    select,
    union_all,
)

from app.common.models import utcnow
from app.errors import BadRequest, Forbidden, NotFound
from app.extensions import db
from app.xapi import jsontext, schemas
from app.xapi.models import Activity, Attachment, Statement, StatementRelation
from app.xapi.services.auth import Principal
from app.xapi.services.identity import agent_key, sha1

# Pages are built from the tables' Core columns, not the ORM entity: a page is read as plain
# rows (id, stored, has_attachments, the statement), so there is no ORM annotation and
# adaptation of every column while the query is built, and no Statement instance and
# identity-map entry per row (issue 14: that was half of a GET's CPU time).
_STATEMENTS = Statement.__table__.c
_RELATIONS = StatementRelation.__table__.c
# The statement a StatementRef points at; one alias for the process (building an alias
# copies every column of the table, and a new alias per request was 10 % of a GET).
_TARGETS = Statement.__table__.alias("target").c
# The constants of the page queries are written into their text, not sent as parameters:
# the partial indexes (`ix_xapi_statements_agent_object`, `ix_xapi_statements_refs`) are
# usable only when the planner can prove their predicate from the query's, which it cannot
# from a parameter in a generic plan, and psycopg prepares a query after a few uses; with
# the constants in the text PostgreSQL can keep one plan per prepared page query instead
# of planning the query again on every GET (issue 14).  Also, an IN list of parameters is
# expanded by SQLAlchemy when it executes, so the text could not be compiled once.
_AGENT_OR_GROUP = (literal_column("'Agent'"), literal_column("'Group'"))
_ACTIVITY = literal_column("'Activity'")
_STATEMENT_REF = literal_column("'StatementRef'")
_KINDS = {"agent": literal_column("'agent'"), "activity": literal_column("'activity'")}

STATEMENT_QUERY_PARAMS = {
    "statementId",
    "voidedStatementId",
    "agent",
    "verb",
    "activity",
    "registration",
    "related_activities",
    "related_agents",
    "since",
    "until",
    "limit",
    "format",
    "attachments",
    "ascending",
    "more",
}


def tenant_conditions(principal: Principal, table=Statement):
    conditions = [table.district_id == principal.district_id]
    if principal.school_id:
        conditions.append(table.school_id == principal.school_id)
    if not principal.can("statements/read", "all/read"):
        if principal.actor is not None:
            conditions.append(table.actor_hash == sha1(agent_key(principal.actor)))
        elif principal.can("statements/read/mine"):
            conditions.append(table.client_id == principal.client_id)
        else:
            raise Forbidden("This client may not read statements.")
    return conditions


def get_statement(principal: Principal, statement_id: str, voided: bool = False) -> Statement:
    if not schemas.is_uuid(statement_id):
        raise BadRequest("statementId must be a UUID.", fields={"statementId": ["not a UUID"]})
    row = db.session.execute(
        select(Statement).where(
            *tenant_conditions(principal), Statement.statement_id == statement_id.lower()
        )
    ).scalar_one_or_none()
    if row is None or row.voided != voided:
        if row is not None and voided:
            raise NotFound("That statement is not voided; ask for it with statementId.")
        if row is not None:
            raise NotFound("That statement is voided; ask for it with voidedStatementId.")
        raise NotFound("No statement with that id.")
    return row


@dataclass
class StatementQuery:
    agent: dict | None = None
    verb: str | None = None
    activity: str | None = None
    registration: str | None = None
    related_activities: bool = False
    related_agents: bool = False
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 0
    format: str = "exact"
    attachments: bool = False
    ascending: bool = False
    after: tuple[datetime, int] | None = None  # keyset cursor of the `more` link

    def to_token(self) -> dict:
        return {
            "agent": self.agent,
            "verb": self.verb,
            "activity": self.activity,
            "registration": self.registration,
            "ra": self.related_activities,
            "rg": self.related_agents,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "limit": self.limit,
            "format": self.format,
            "attachments": self.attachments,
            "asc": self.ascending,
        }

    @classmethod
    def from_token(cls, data: dict) -> StatementQuery:
        return cls(
            agent=data["agent"],
            verb=data["verb"],
            activity=data["activity"],
            registration=data["registration"],
            related_activities=data["ra"],
            related_agents=data["rg"],
            since=datetime.fromisoformat(data["since"]) if data["since"] else None,
            until=datetime.fromisoformat(data["until"]) if data["until"] else None,
            limit=data["limit"],
            format=data["format"],
            attachments=data["attachments"],
            ascending=data["asc"],
            after=(datetime.fromisoformat(data["after"][0]), data["after"][1]),
        )


def _bool_param(params, name) -> bool:
    value = params.get(name)
    if value is None:
        return False
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise BadRequest(f"{name} must be true or false.", fields={name: ["not a boolean"]})


def parse_agent_param(value: str, name: str = "agent") -> dict:
    try:
        agent = jsontext.loads(value, current_app.config["XAPI_MAX_JSON_DEPTH"])
    except jsontext.JsonRejected as exc:
        if exc.kind != "syntax":
            raise jsontext.as_bad_request(exc, name) from None
        raise BadRequest(
            f"{name} must be a JSON Agent object.", fields={name: ["not JSON"]}
        ) from None
    try:
        schemas.actor_schema(agent).load(agent)
    except ValidationError as exc:
        flat = schemas.flatten_errors(exc.messages, name)
        raise BadRequest(f"Invalid {name}: " + schemas.describe_errors(flat), fields=flat) from None
    return agent


def parse_query(params: dict, version: str) -> StatementQuery:
    unknown = set(params) - STATEMENT_QUERY_PARAMS
    if unknown:
        raise BadRequest(
            f"Unknown query parameter(s): {', '.join(sorted(unknown))}.",
            fields={u: ["unknown parameter"] for u in unknown},
        )
    query = StatementQuery()
    if "agent" in params:
        query.agent = parse_agent_param(params["agent"])
    if "verb" in params:
        if not schemas.is_iri(params["verb"]):
            raise BadRequest("verb must be an IRI.", fields={"verb": ["not an IRI"]})
        query.verb = params["verb"]
    if "activity" in params:
        if not schemas.is_iri(params["activity"]):
            raise BadRequest("activity must be an IRI.", fields={"activity": ["not an IRI"]})
        query.activity = params["activity"]
    if "registration" in params:
        if not schemas.is_uuid(params["registration"]):
            raise BadRequest(
                "registration must be a UUID.", fields={"registration": ["not a UUID"]}
            )
        query.registration = params["registration"].lower()
    query.related_activities = _bool_param(params, "related_activities")
    query.related_agents = _bool_param(params, "related_agents")
    query.attachments = _bool_param(params, "attachments")
    query.ascending = _bool_param(params, "ascending")
    for name in ("since", "until"):
        if name in params:
            try:
                moment = schemas.parse_timestamp(params[name], "1.0.3").replace(tzinfo=None)
            except ValueError as exc:
                raise BadRequest(f"{name} {exc}.", fields={name: [str(exc)]}) from None
            setattr(query, name, moment)
    if "limit" in params:
        try:
            query.limit = int(params["limit"])
            if query.limit < 0:
                raise ValueError
        except ValueError:
            raise BadRequest(
                "limit must be a non-negative integer.",
                fields={"limit": ["not a non-negative integer"]},
            ) from None
    fmt = params.get("format", "exact")
    if fmt not in ("ids", "exact", "canonical"):
        raise BadRequest(
            "format must be ids, exact or canonical.", fields={"format": ["unknown format"]}
        )
    query.format = fmt
    return query


def _more_serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="xapi-more")


def query_from_more(token: str) -> StatementQuery:
    try:
        return StatementQuery.from_token(_more_serializer().loads(token))
    except (BadSignature, KeyError, TypeError, ValueError):
        raise BadRequest("The more link is invalid.", fields={"more": ["invalid"]}) from None


@dataclass(frozen=True)
class _PageShape:
    """Which conditions a page query has (not their values): the key of the statements
    built once per process by :func:`_page_statement`."""

    school: bool
    scope: str  # "all", "actor" (launch token: its own actor) or "mine" (its own statements)
    agent: bool
    related_agents: bool
    verb: bool
    activity: bool
    related_activities: bool
    registration: bool
    since: bool
    until: bool
    after: bool
    ascending: bool

    @property
    def direct(self) -> bool:
        return self.agent or self.verb or self.activity or self.registration


def _read_scope(principal: Principal) -> str:
    if principal.can("statements/read", "all/read"):
        return "all"
    if principal.actor is not None:
        return "actor"
    if principal.can("statements/read/mine"):
        return "mine"
    raise Forbidden("This client may not read statements.")


def _page_shape_and_params(
    principal: Principal, query: StatementQuery, limit: int
) -> tuple[_PageShape, dict]:
    scope = _read_scope(principal)
    params: dict = {"district": principal.district_id, "limit": limit + 1}
    if principal.school_id:
        params["school"] = principal.school_id
    if scope == "actor":
        params["actor"] = sha1(agent_key(principal.actor))
    elif scope == "mine":
        params["client"] = principal.client_id
    if query.agent is not None:
        params["agent"] = sha1(agent_key(query.agent))
    if query.verb is not None:
        params["verb"] = sha1(query.verb)
    if query.activity is not None:
        params["activity"] = sha1(query.activity)
    if query.registration is not None:
        params["registration"] = query.registration
    if query.since is not None:
        params["since"] = query.since
    if query.until is not None:
        params["until"] = query.until
    if query.after is not None:
        params["after_stored"], params["after_id"] = query.after
    shape = _PageShape(
        school=bool(principal.school_id),
        scope=scope,
        agent=query.agent is not None,
        related_agents=query.related_agents,
        verb=query.verb is not None,
        activity=query.activity is not None,
        related_activities=query.related_activities,
        registration=query.registration is not None,
        since=query.since is not None,
        until=query.until is not None,
        after=query.after is not None,
        ascending=query.ascending,
    )
    return shape, params


def _related(table, kind: str, key: str):
    """Statements that name the ``kind`` ("agent"/"activity") anywhere; ``key`` is the name
    of the bound parameter that holds its hashed key."""
    return table.id.in_(
        select(_RELATIONS.statement_pk).where(
            _RELATIONS.district_id == bindparam("district"),
            _RELATIONS.key_hash == bindparam(key),
            _RELATIONS.kind == _KINDS[kind],
        )
    )


def _direct_conditions(shape: _PageShape, table, agent_as: str | None = None) -> list:
    """The filters on the statement itself (agent, verb, activity, registration).

    The agent filter matches the actor or an agent object; ``agent_as`` ("actor" or
    "object") keeps one of the two, for the page halves of :func:`_page_statement`."""
    conditions = []
    if shape.agent:
        if shape.related_agents:
            conditions.append(_related(table, "agent", "agent"))
        else:
            as_actor = table.actor_hash == bindparam("agent")
            as_object = and_(
                table.object_hash == bindparam("agent"),
                table.object_type.in_(_AGENT_OR_GROUP),
            )
            conditions.append(
                {"actor": as_actor, "object": as_object}.get(agent_as, or_(as_actor, as_object))
            )
    if shape.verb:
        conditions.append(table.verb_hash == bindparam("verb"))
    if shape.activity:
        if shape.related_activities:
            conditions.append(_related(table, "activity", "activity"))
        else:
            conditions.append(
                and_(table.object_hash == bindparam("activity"), table.object_type == _ACTIVITY)
            )
    if shape.registration:
        conditions.append(table.registration == bindparam("registration"))
    return conditions


def _base_conditions(shape: _PageShape, table) -> list:
    """Tenant, read scope, not voided, since/until and the `more` cursor."""
    conditions = [table.district_id == bindparam("district")]
    if shape.school:
        conditions.append(table.school_id == bindparam("school"))
    if shape.scope == "actor":
        conditions.append(table.actor_hash == bindparam("actor"))
    elif shape.scope == "mine":
        conditions.append(table.client_id == bindparam("client"))
    conditions.append(table.voided.is_(False))
    if shape.since:
        conditions.append(table.stored > bindparam("since"))
    if shape.until:
        conditions.append(table.stored <= bindparam("until"))
    if shape.after:
        stored, pk = bindparam("after_stored"), bindparam("after_id")
        if shape.ascending:
            later = or_(table.stored > stored, and_(table.stored == stored, table.id > pk))
        else:
            later = or_(table.stored < stored, and_(table.stored == stored, table.id < pk))
        conditions.append(later)
    return conditions


@functools.lru_cache(maxsize=512)
def _page_statement(shape: _PageShape):
    """The page query of one shape, values as bound parameters: built once per process
    (building it for every request was a third of a GET's CPU time, issue 14).

    With a filter on the statement, statements targeting a matching statement (a
    StatementRef, a voiding statement) match too: that second query goes in the same
    round trip (UNION ALL); each part has its own ORDER BY and LIMIT (so each is an
    index range scan that stops early) and the caller merges them.

    The agent filter (actor *or* agent object) is two such parts, not one OR: with the
    OR no index gives the rows in (stored, id) order, and PostgreSQL either read every
    statement of the agent and sorted them, or walked the whole district's page index
    backwards filtering on the agent, which for an agent whose statements are old took
    2.4 s at 1,000,000 statements instead of 0.3 ms (docs/xapi.md, issue 14)."""
    table = _STATEMENTS
    order = (
        (table.stored.asc(), table.id.asc())
        if shape.ascending
        else (table.stored.desc(), table.id.desc())
    )
    # The statement as the database's JSON text, not as a dict: an ``exact`` page is those
    # texts spliced into the response, without parsing them here and dumping them again
    # (PostgreSQL's jsonb output is standard JSON; issue 14).
    columns = (table.id, table.stored, table.has_attachments, cast(table.data, Text).label("json"))
    limit = bindparam("limit", type_=Integer)
    base = _base_conditions(shape, table)
    parts = [
        select(*columns)
        .where(*base, *_direct_conditions(shape, table, agent_as))
        .order_by(*order)
        .limit(limit)
        for agent_as in (
            ("actor", "object") if shape.agent and not shape.related_agents else (None,)
        )
    ]
    if not shape.direct:
        return parts[0]
    target = _TARGETS
    referring = (
        select(*columns)
        .where(
            *base,
            table.object_type == _STATEMENT_REF,
            exists(
                select(target.id).where(
                    target.district_id == table.district_id,
                    target.statement_id == table.object_ref,
                    *_direct_conditions(shape, target),
                )
            ),
        )
        .order_by(*order)
        .limit(limit)
    )
    # Subqueries: SQLite takes no ORDER BY/LIMIT on the members of a compound SELECT.
    return union_all(*(select(part.subquery()) for part in (*parts, referring)))


@functools.lru_cache(maxsize=512)
def _page_sql(shape: _PageShape, dialect) -> str:
    """:func:`_page_statement` compiled once per shape for PostgreSQL: the text psycopg
    takes (``%(name)s`` placeholders with their casts, as SQLAlchemy sends it)."""
    return _page_statement(shape).compile(dialect=dialect).string


def _page_rows(shape: _PageShape, params: dict) -> list:
    """The rows of a page.  On PostgreSQL the compiled text goes to the driver's cursor:
    SQLAlchemy's execution path (parameter processing, result and row objects) was a
    fifth of a GET's CPU at 1,000,000 statements, for a query whose text never changes
    (issue 14).  The rows are named tuples with the same attributes."""
    connection = db.session.connection()
    if connection.dialect.name != "postgresql":
        return db.session.execute(_page_statement(shape), params).all()
    from psycopg.rows import namedtuple_row

    driver = connection.connection.driver_connection
    with driver.cursor(row_factory=namedtuple_row) as cursor:
        cursor.execute(_page_sql(shape, connection.dialect), params)
        return cursor.fetchall()


def query_statements(principal: Principal, query: StatementQuery) -> tuple[list, str | None]:
    """One page of statements matching ``query``, and the `more` token if there are more.

    The rows have the attributes ``id``, ``stored``, ``has_attachments`` and ``json``
    (the statement as stored, as JSON text: see :func:`app.xapi.services.formats.page_json`)."""
    max_limit = current_app.config.get("XAPI_MAX_LIMIT", 500)
    limit = min(query.limit or max_limit, max_limit)
    shape, params = _page_shape_and_params(principal, query, limit)
    rows = _page_rows(shape, params)
    if shape.direct:
        # The parts of the UNION: a statement can be in two of them (an agent that is
        # actor and object; a match that also targets a match), and their order is not
        # the page's.
        unique = {row.id: row for row in rows}
        rows = sorted(unique.values(), key=lambda r: (r.stored, r.id), reverse=not shape.ascending)
    more = None
    if len(rows) > limit:
        rows = rows[:limit]
        token = query.to_token()
        token["after"] = [rows[-1].stored.isoformat(), rows[-1].id]
        more = _more_serializer().dumps(token)
    return rows, more


def consistent_through() -> str:
    return schemas.format_timestamp(utcnow())


def attachments_for(principal: Principal, statements: list[dict]) -> list[Attachment]:
    """The attachment contents of ``statements`` (one query for the whole page)."""
    hashes = {a["sha2"] for statement in statements for a in (statement.get("attachments") or [])}
    if not hashes:
        return []
    return list(
        db.session.execute(
            select(Attachment).where(
                Attachment.district_id == principal.district_id, Attachment.sha2.in_(sorted(hashes))
            )
        ).scalars()
    )


# --- activities and agents ---------------------------------------------------------------------


def get_activity(principal: Principal, activity_id: str) -> dict:
    row = db.session.execute(
        select(Activity).where(
            Activity.district_id == principal.district_id,
            Activity.activity_hash == sha1(activity_id),
        )
    ).scalar_one_or_none()
    activity = {"objectType": "Activity", "id": activity_id}
    if row is not None and row.definition:
        activity["definition"] = row.definition
    return activity

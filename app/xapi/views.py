"""The LRS HTTP interface under ``/xapi/`` (xAPI 2.0 and 1.0.3).

One view receives every request under the prefix, turns it into an :class:`LrsRequest`
(which is also what the 1.0.3 alternate request syntax -- a form POST carrying method,
headers and content -- is unpacked into), and dispatches by resource.  Business rules are
in :mod:`app.xapi.services`; this module only parses HTTP and shapes responses.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from flask import Blueprint, Response, current_app, g, request
from werkzeug.http import http_date, parse_options_header

from app.common.transaction import read_only
from app.errors import AppError, BadRequest, NotFound
from app.xapi import jsontext, multipart, schemas, services, throttle
from app.xapi.services import DocumentScope

bp = Blueprint("xapi", __name__, url_prefix="/xapi")

ALLOWED_HEADERS = (
    "Content-Type, Content-Length, Authorization, X-Experience-API-Version, If-Match, If-None-Match"
)
EXPOSED_HEADERS = (
    "ETag, Last-Modified, X-Experience-API-Version, X-Experience-API-Consistent-Through, "
    "Content-Type"
)
ALTERNATE_HEADERS = {
    "authorization",
    "x-experience-api-version",
    "content-type",
    "content-length",
    "if-match",
    "if-none-match",
}


class MethodNotAllowed(AppError):
    status = 405
    code = "method_not_allowed"


@dataclass
class LrsRequest:
    method: str
    params: dict
    headers: dict  # lower-case names
    body: bytes
    version: str = "2.0.0"
    principal: services.Principal | None = None
    extra_headers: dict = field(default_factory=dict)

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")

    @property
    def mimetype(self) -> str:
        return parse_options_header(self.content_type)[0].lower()


def _negotiate_version(value: str | None) -> str:
    if value is None:
        raise BadRequest(
            "The X-Experience-API-Version header is required.",
            fields={"X-Experience-API-Version": ["missing"]},
        )
    value = value.strip()
    if value in ("2.0", "2.0.0") or (value.startswith("2.0.") and value[4:].isdigit()):
        return "2.0.0"
    if value in ("1.0", "1.0.0", "1.0.1", "1.0.2", "1.0.3") or (
        value.startswith("1.0.") and value[4:].isdigit()
    ):
        return "1.0.3"
    raise BadRequest(
        f"X-Experience-API-Version {value!r} is not supported (use 2.0.0 or 1.0.3).",
        fields={"X-Experience-API-Version": ["unsupported"]},
    )


def _build_request() -> LrsRequest:
    params = _query_params(request.query_string.decode("utf-8", "replace"))
    headers = {k.lower(): v for k, v in request.headers.items()}
    method = request.method
    if method == "POST" and "method" in params:
        version_header = headers.get("x-experience-api-version")
        if version_header and version_header.strip().startswith("2"):
            raise BadRequest(
                "The alternate request syntax (method=...) is not supported in xAPI 2.0.",
                fields={"method": ["not supported in 2.0"]},
            )
        return _alternate_request(params, headers)
    body = request.get_data(cache=False)
    return LrsRequest(method=method, params=params, headers=headers, body=body)


def _query_params(query_string: str) -> dict:
    params: dict = {}
    for key, value in parse_qsl(query_string, keep_blank_values=True):
        if key in params:
            raise BadRequest(f"The parameter {key} is given twice.", fields={key: ["repeated"]})
        params[key] = value
    return params


def _alternate_request(params: dict, headers: dict) -> LrsRequest:
    method = params.pop("method").upper()
    if params:
        raise BadRequest(
            "With the alternate request syntax only 'method' may be in the query string; "
            f"move {', '.join(sorted(params))} into the form.",
            fields={k: ["not allowed"] for k in params},
        )
    if method not in ("GET", "PUT", "POST", "DELETE", "HEAD"):
        raise BadRequest(
            f"method={method} is not an HTTP method the LRS knows.", fields={"method": ["unknown"]}
        )
    if (
        parse_options_header(headers.get("content-type", ""))[0].lower()
        != "application/x-www-form-urlencoded"
    ):
        raise BadRequest(
            "The alternate request syntax needs Content-Type application/x-www-form-urlencoded.",
            fields={"Content-Type": ["not a form"]},
        )
    form = _query_params(request.get_data(as_text=True))
    new_headers = {k: v for k, v in headers.items() if k not in ("content-type", "content-length")}
    new_params = {}
    for key, value in form.items():
        if key.lower() in ALTERNATE_HEADERS:
            new_headers[key.lower()] = value
        elif key == "content":
            continue
        else:
            new_params[key] = value
    content = form.get("content")
    if method in ("PUT", "POST") and content is None:
        raise BadRequest(
            "The alternate request syntax sends the body in a form field named content.",
            fields={"content": ["missing"]},
        )
    if content is not None and "content-type" not in new_headers:
        new_headers["content-type"] = "application/json"
    return LrsRequest(
        method=method, params=new_params, headers=new_headers, body=(content or "").encode("utf-8")
    )


# --- CORS and common headers ---------------------------------------------------------------


@bp.after_request
def _lrs_headers(response: Response) -> Response:
    version = g.pop("xapi_version", None) or "2.0.0"
    response.headers["X-Experience-API-Version"] = version
    response.headers["Access-Control-Allow-Origin"] = request.headers.get("Origin") or "*"
    response.headers["Access-Control-Allow-Methods"] = "GET, HEAD, POST, PUT, DELETE, OPTIONS"
    response.headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
    response.headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
    response.headers["Access-Control-Max-Age"] = "600"
    response.headers.add("Vary", "Origin")
    response.headers["Cache-Control"] = "no-store"
    if request.path.rstrip("/").endswith("/statements") and request.method in ("GET", "HEAD"):
        response.headers.setdefault(
            "X-Experience-API-Consistent-Through", services.consistent_through()
        )
    if response.status_code == 401:
        response.headers["WWW-Authenticate"] = 'Basic realm="xAPI"'
        throttle.record_failure()
    return response


@bp.route(
    "",
    methods=["GET", "POST", "PUT", "DELETE", "OPTIONS"],
    defaults={"resource": ""},
    strict_slashes=False,
)
@bp.route("/<path:resource>", methods=["GET", "POST", "PUT", "DELETE", "OPTIONS"])
# Every GET/HEAD of the LRS only reads (the client's last version is written on the
# engine, in a transaction of its own), so on PostgreSQL it runs without the BEGIN and
# COMMIT round trips: a statements GET is 2 round trips instead of 4 (issue 14).
@read_only
def lrs(resource: str):
    throttle.check()  # this address's failed authentications (429 while too many)
    if request.method == "OPTIONS":
        return Response(status=200)
    resource = resource.strip("/")
    if resource == "about":
        g.xapi_version = (
            "2.0.0"
            if (request.headers.get("X-Experience-API-Version", "2").startswith("2"))
            else "1.0.3"
        )
        if request.method not in ("GET", "HEAD"):
            raise MethodNotAllowed("The About resource only answers GET.")
        return _json(
            {
                "version": list(services.SUPPORTED_VERSIONS),
                "extensions": {
                    "https://shuyuan.example/xapi/extensions/lrs": {
                        "name": current_app.config.get("PLATFORM_NAME", "Shuyuan"),
                        "tenancy": "district/school",
                    }
                },
            }
        )
    handler = RESOURCES.get(resource)
    if handler is None:
        raise NotFound(f"/xapi/{resource} is not an xAPI resource.")
    lrs_request = _build_request()
    declared = lrs_request.headers.get("x-experience-api-version")
    if declared is None:
        # Answer in the version this client last spoke (it cannot tell us this time).
        with contextlib.suppress(AppError):
            g.xapi_version = services.authenticate(
                lrs_request.headers.get("authorization")
            ).last_version
    lrs_request.version = _negotiate_version(declared)
    g.xapi_version = lrs_request.version
    lrs_request.principal = services.authenticate(lrs_request.headers.get("authorization"))
    if lrs_request.principal.last_version != lrs_request.version:
        services.remember_version(lrs_request.principal, lrs_request.version)
    method = "GET" if lrs_request.method == "HEAD" else lrs_request.method
    function = handler.get(method)
    if function is None:
        raise MethodNotAllowed(f"{lrs_request.method} is not allowed on /xapi/{resource}.")
    token = schemas.SPEC_VERSION.set(lrs_request.version)
    try:
        return function(lrs_request)
    finally:
        schemas.SPEC_VERSION.reset(token)


def _json(data, status: int = 200, headers: dict | None = None) -> Response:
    response = Response(
        json.dumps(data, ensure_ascii=False, separators=(",", ":")),
        status=status,
        mimetype="application/json",
    )
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def _allowed(req: LrsRequest, allowed: set[str]) -> None:
    unknown = set(req.params) - allowed
    if unknown:
        raise BadRequest(
            f"Unknown parameter(s) for this resource: {', '.join(sorted(unknown))}.",
            fields={u: ["unknown parameter"] for u in unknown},
        )


# --- statements ------------------------------------------------------------------------------


def _parse_statements_body(req: LrsRequest) -> tuple[object, dict]:
    mimetype = req.mimetype
    if mimetype == "application/json":
        return _load_json(req.body), {}
    if mimetype == "multipart/mixed":
        first, attachments = multipart.parse(req.content_type, req.body, req.version)
        return _load_json(first), attachments
    raise BadRequest(
        "Statements must be sent as application/json or multipart/mixed (with attachments).",
        fields={"Content-Type": [f"{mimetype or 'missing'} is not accepted"]},
    )


def _load_json(body: bytes, where: str = "body"):
    try:
        return jsontext.loads(body, current_app.config["XAPI_MAX_JSON_DEPTH"])
    except jsontext.JsonRejected as exc:
        raise jsontext.as_bad_request(
            exc, where, current_app.config["XAPI_MAX_JSON_DEPTH"]
        ) from None


def statements_put(req: LrsRequest) -> Response:
    _allowed(req, {"statementId"})
    statement_id = req.params.get("statementId")
    if not statement_id:
        raise BadRequest(
            "PUT needs the statementId parameter.", fields={"statementId": ["missing"]}
        )
    if not schemas.is_uuid(statement_id):
        raise BadRequest("statementId must be a UUID.", fields={"statementId": ["not a UUID"]})
    body, attachments = _parse_statements_body(req)
    if not isinstance(body, dict):
        raise BadRequest(
            "PUT takes one statement (a JSON object).", fields={"body": ["not an object"]}
        )
    statements = [body]
    services.store_statements(
        req.principal,
        statements,
        req.version,
        multipart.keys_case(attachments, statements),
        statement_id=statement_id,
        single=True,
        json_checked=True,
    )
    return Response(status=204)


def statements_post(req: LrsRequest) -> Response:
    # Only the alternate syntax may put parameters on a POST, and it is unpacked already.
    _allowed(req, set())
    body, attachments = _parse_statements_body(req)
    single = isinstance(body, dict)
    statements = [body] if single else body
    ids = services.store_statements(
        req.principal,
        statements,
        req.version,
        multipart.keys_case(attachments, statements),
        single=single,
        json_checked=True,
    )
    return _json(ids)


def statements_get(req: LrsRequest) -> Response:
    params = req.params
    languages = [lang for lang, _ in _accept_languages(req.headers.get("accept-language", ""))]
    consistent = services.consistent_through()
    if "statementId" in params or "voidedStatementId" in params:
        _allowed(req, {"statementId", "voidedStatementId", "format", "attachments"})
        if "statementId" in params and "voidedStatementId" in params:
            raise BadRequest("Give statementId or voidedStatementId, not both.")
        query = services.parse_query(
            {k: v for k, v in params.items() if k in ("format", "attachments")}, req.version
        )
        voided = "voidedStatementId" in params
        row = services.get_statement(
            req.principal, params["voidedStatementId" if voided else "statementId"], voided
        )
        data = services.render_statement(row.full, query.format, languages)
        headers = {
            "X-Experience-API-Consistent-Through": consistent,
            "Last-Modified": http_date(row.stored),
        }
        if query.attachments:
            attachments = services.attachments_for(req.principal, [row.full])
            return multipart.response(data, attachments, headers)
        return _json(data, headers=headers)
    if "more" in params:
        _allowed(req, {"more"})
        query = services.query_from_more(params["more"])
    else:
        query = services.parse_query(params, req.version)
    rows, more = services.query_statements(req.principal, query)
    more_url = f"{request.script_root}/xapi/statements?more={more}" if more else ""
    headers = {"X-Experience-API-Consistent-Through": consistent}
    if rows:
        headers["Last-Modified"] = http_date(max(r.stored for r in rows))
    if query.attachments:
        stored = [json.loads(r.json) for r in rows]
        data = {
            "statements": [services.render_statement(s, query.format, languages) for s in stored],
            "more": more_url,
        }
        return multipart.response(data, services.attachments_for(req.principal, stored), headers)
    body = services.page_json([r.json for r in rows], query.format, languages, more_url)
    return Response(body, status=200, mimetype="application/json", headers=headers)


def _accept_languages(header: str) -> list[tuple[str, float]]:
    languages = []
    for item in header.split(","):
        item = item.strip()
        if not item:
            continue
        lang, _, q = item.partition(";q=")
        try:
            languages.append((lang.strip(), float(q) if q else 1.0))
        except ValueError:
            continue
    return sorted(languages, key=lambda x: -x[1])


# --- documents ------------------------------------------------------------------------------


def _agent_param(req: LrsRequest, required: bool = True):
    if "agent" not in req.params:
        if required:
            raise BadRequest("The agent parameter is required.", fields={"agent": ["missing"]})
        return None
    return services.parse_agent_param(req.params["agent"])


def _iri_param(req: LrsRequest, name: str) -> str:
    value = req.params.get(name)
    if value is None:
        raise BadRequest(f"The {name} parameter is required.", fields={name: ["missing"]})
    if not schemas.is_iri(value):
        raise BadRequest(f"{name} must be an IRI.", fields={name: ["not an IRI"]})
    return value


def _since_param(req: LrsRequest):
    if "since" not in req.params:
        return None
    try:
        return schemas.parse_timestamp(req.params["since"], "1.0.3").replace(tzinfo=None)
    except ValueError as exc:
        raise BadRequest(f"since {exc}.", fields={"since": [str(exc)]}) from None


def _state_scope(req: LrsRequest) -> DocumentScope:
    _allowed(req, {"activityId", "agent", "registration", "stateId", "since"})
    registration = req.params.get("registration")
    if registration is not None and not schemas.is_uuid(registration):
        raise BadRequest("registration must be a UUID.", fields={"registration": ["not a UUID"]})
    return DocumentScope(
        "state",
        activity_id=_iri_param(req, "activityId"),
        agent=_agent_param(req),
        registration=registration.lower() if registration else None,
    )


def _activity_profile_scope(req: LrsRequest) -> DocumentScope:
    _allowed(req, {"activityId", "profileId", "since"})
    return DocumentScope("activity_profile", activity_id=_iri_param(req, "activityId"))


def _agent_profile_scope(req: LrsRequest) -> DocumentScope:
    _allowed(req, {"agent", "profileId", "since"})
    return DocumentScope("agent_profile", agent=_agent_param(req))


def _document_handlers(scope_of, id_param: str, kind: str):
    def get(req: LrsRequest) -> Response:
        scope = scope_of(req)
        doc_id = req.params.get(id_param)
        if doc_id is None:
            ids = services.list_document_ids(req.principal, scope, _since_param(req))
            return _json(ids)
        if "since" in req.params:
            raise BadRequest(
                f"since is only for listing documents, not with {id_param}.",
                fields={"since": ["not allowed"]},
            )
        document = services.get_document(req.principal, scope, doc_id)
        response = Response(document.content, status=200, content_type=document.content_type)
        response.headers["ETag"] = document.etag
        response.headers["Last-Modified"] = http_date(document.updated)
        return response

    def save(req: LrsRequest, merge: bool) -> Response:
        scope = scope_of(req)
        if "since" in req.params:
            raise BadRequest("since is not allowed here.", fields={"since": ["not allowed"]})
        doc_id = req.params.get(id_param)
        if doc_id is None:
            raise BadRequest(
                f"The {id_param} parameter is required.", fields={id_param: ["missing"]}
            )
        content_type = req.content_type or "application/octet-stream"
        if merge and req.mimetype == "application/json":
            value = _load_json(req.body) if req.body else None
            if not isinstance(value, dict):
                raise BadRequest(
                    "POST merges JSON objects: the body must be a JSON object.",
                    fields={"body": ["not a JSON object"]},
                )
        # 2.0 guards State documents too; 1.0.3 only the profiles, and there a PUT without
        # If-Match / If-None-Match is refused even for a new document.
        require = kind != "state" or req.version.startswith("2")
        strict_new = kind != "state" and req.version.startswith("1") and not merge
        document = services.save_document(
            req.principal,
            scope,
            doc_id,
            req.body,
            content_type,
            merge,
            req.headers.get("if-match"),
            req.headers.get("if-none-match"),
            require_precondition=require,
            require_precondition_new=strict_new,
        )
        return Response(status=204, headers={"ETag": document.etag})

    def put(req: LrsRequest) -> Response:
        return save(req, merge=False)

    def post(req: LrsRequest) -> Response:
        return save(req, merge=True)

    def delete(req: LrsRequest) -> Response:
        scope = scope_of(req)
        if "since" in req.params:
            raise BadRequest("since is not allowed here.", fields={"since": ["not allowed"]})
        doc_id = req.params.get(id_param)
        if doc_id is None and kind != "state":
            raise BadRequest(
                f"The {id_param} parameter is required.", fields={id_param: ["missing"]}
            )
        services.delete_documents(
            req.principal,
            scope,
            doc_id,
            req.headers.get("if-match"),
            req.headers.get("if-none-match"),
        )
        return Response(status=204)

    return {"GET": get, "PUT": put, "POST": post, "DELETE": delete}


def activities_get(req: LrsRequest) -> Response:
    _allowed(req, {"activityId"})
    return _json(services.get_activity(req.principal, _iri_param(req, "activityId")))


def agents_get(req: LrsRequest) -> Response:
    _allowed(req, {"agent"})
    agent = _agent_param(req)
    if agent.get("objectType") == "Group":
        raise BadRequest(
            "The Agents resource takes an Agent, not a Group.", fields={"agent": ["is a Group"]}
        )
    return _json(services.person_for(agent))


RESOURCES = {
    "statements": {"GET": statements_get, "PUT": statements_put, "POST": statements_post},
    "activities/state": _document_handlers(_state_scope, "stateId", "state"),
    "activities/profile": _document_handlers(
        _activity_profile_scope, "profileId", "activity_profile"
    ),
    "agents/profile": _document_handlers(_agent_profile_scope, "profileId", "agent_profile"),
    "activities": {"GET": activities_get},
    "agents": {"GET": agents_get},
}

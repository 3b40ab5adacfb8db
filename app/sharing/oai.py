"""OAI-PMH 2.0 endpoint (``/sharing/oai``) for the region-public catalogs, ``oai_dc``.

Records are the items of the newest release of every region-public catalog; a set is a
catalog (``setSpec`` = its uid); an item withdrawn by its publisher stays as a deleted
record (``deletedRecord`` = persistent).  A record's datestamp is the time of the newest
release that carries it (or of its withdrawal).  Resumption tokens are stateless: they
carry the query and the position, signed so a harvester cannot forge one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from xml.etree import ElementTree as ET  # noqa: S405  (writes XML, never parses)

from flask import Blueprint, Response, current_app, request
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import select

from app.extensions import db
from app.sharing.models import Release, SharedCatalog, Withdrawal
from app.sharing.services.catalogs import latest_release, publisher_label

bp = Blueprint("sharing_oai", __name__)

OAI_NS = "http://www.openarchives.org/OAI/2.0/"
DC_NS = "http://purl.org/dc/elements/1.1/"
OAI_DC_NS = "http://www.openarchives.org/OAI/2.0/oai_dc/"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
PAGE = 100  # records per response (config SHARING_OAI_PAGE overrides)
GRANULARITY = "YYYY-MM-DDThh:mm:ssZ"
for prefix, uri in (("", OAI_NS), ("dc", DC_NS), ("oai_dc", OAI_DC_NS), ("xsi", XSI_NS)):
    ET.register_namespace(prefix, uri)


class OAIError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class OAIRecord:
    identifier: str
    datestamp: datetime
    sets: list[str]
    fields: dict | None  # None: deleted


def _stamp(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_date(value: str, end: bool) -> datetime:
    for pattern in ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%d"):
        try:
            parsed = datetime.strptime(value, pattern)
        except (TypeError, ValueError):
            continue
        if pattern == "%Y-%m-%d" and end:
            parsed = parsed.replace(hour=23, minute=59, second=59)
        return parsed
    raise OAIError("badArgument", "Dates are YYYY-MM-DD or YYYY-MM-DDThh:mm:ssZ.")


def _host() -> str:
    from urllib.parse import urlsplit

    return urlsplit(current_app.config["SHARING_ORIGIN"]).hostname or "localhost"


def _identifier(content_id: str) -> str:
    return f"oai:{_host()}:{content_id}"


def _records() -> tuple[dict[str, OAIRecord], dict[str, SharedCatalog]]:
    catalogs = {
        c.uid: c
        for c in db.session.execute(
            select(SharedCatalog).where(SharedCatalog.region_public.is_(True))
        ).scalars()
    }
    records: dict[str, OAIRecord] = {}
    for uid, catalog in catalogs.items():
        release = latest_release(catalog)
        if release is not None:
            for content_id, entry in release.manifest.items():
                record = records.get(content_id)
                if record is None:
                    records[content_id] = OAIRecord(
                        content_id, release.created_at, [uid], entry["fields"]
                    )
                else:
                    record.sets.append(uid)
                    record.datestamp = max(record.datestamp, release.created_at)
        for withdrawal in db.session.execute(
            select(Withdrawal).where(Withdrawal.catalog_id == catalog.id)
        ).scalars():
            record = records.get(withdrawal.content_id)
            if record is None or record.fields is None:
                records[withdrawal.content_id] = OAIRecord(
                    withdrawal.content_id, withdrawal.withdrawn_at, [uid], None
                )
            elif withdrawal.content_id in records:
                # Still carried by an older release only: the withdrawal wins.
                records[withdrawal.content_id] = OAIRecord(
                    withdrawal.content_id, withdrawal.withdrawn_at, [uid], None
                )
    return records, catalogs


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="sharing-oai")


def _select(args: dict) -> tuple[list[OAIRecord], dict, int]:
    """Records matching the request (or its resumption token), and the cursor."""
    if "resumptionToken" in args:
        if set(args) - {"verb", "resumptionToken"}:
            raise OAIError("badArgument", "resumptionToken is exclusive.")
        try:
            query = _serializer().loads(args["resumptionToken"])
        except BadSignature:
            raise OAIError("badResumptionToken", "The resumption token is invalid.") from None
        cursor = query.pop("cursor")
    else:
        query = {k: args[k] for k in ("metadataPrefix", "set", "from", "until") if k in args}
        cursor = 0
        if query.get("metadataPrefix") != "oai_dc":
            if "metadataPrefix" not in query:
                raise OAIError("badArgument", "metadataPrefix is required.")
            raise OAIError("cannotDisseminateFormat", "Only oai_dc is offered.")
    records, catalogs = _records()
    chosen = sorted(records.values(), key=lambda r: r.identifier)
    if query.get("set"):
        if query["set"] not in catalogs:
            raise OAIError("noRecordsMatch", "No such set.")
        chosen = [r for r in chosen if query["set"] in r.sets]
    if query.get("from"):
        start = _parse_date(query["from"], end=False)
        chosen = [r for r in chosen if r.datestamp >= start]
    if query.get("until"):
        stop = _parse_date(query["until"], end=True)
        chosen = [r for r in chosen if r.datestamp <= stop]
    if not chosen:
        raise OAIError("noRecordsMatch", "No records match.")
    return chosen, query, cursor


def _el(parent, tag: str, text: str | None = None, **attrib):
    element = ET.SubElement(parent, tag, attrib)
    if text is not None:
        element.text = text
    return element


def _header(parent, record: OAIRecord):
    attrib = {"status": "deleted"} if record.fields is None else {}
    header = _el(parent, f"{{{OAI_NS}}}header", **attrib)
    _el(header, f"{{{OAI_NS}}}identifier", _identifier(record.identifier))
    _el(header, f"{{{OAI_NS}}}datestamp", _stamp(record.datestamp))
    for uid in sorted(record.sets):
        _el(header, f"{{{OAI_NS}}}setSpec", uid)


def _record(parent, record: OAIRecord):
    element = _el(parent, f"{{{OAI_NS}}}record")
    _header(element, record)
    if record.fields is None:
        return
    metadata = _el(element, f"{{{OAI_NS}}}metadata")
    dc = _el(
        metadata,
        f"{{{OAI_DC_NS}}}dc",
        **{
            f"{{{XSI_NS}}}schemaLocation": f"{OAI_DC_NS} http://www.openarchives.org/OAI/2.0/oai_dc.xsd"
        },
    )
    fields = record.fields
    _el(dc, f"{{{DC_NS}}}title", fields["title"])
    if fields.get("summary"):
        _el(dc, f"{{{DC_NS}}}description", fields["summary"])
    _el(dc, f"{{{DC_NS}}}publisher", fields["publisher"])
    if fields.get("subject"):
        _el(dc, f"{{{DC_NS}}}subject", fields["subject"])
    for tag in fields.get("tags", []):
        _el(dc, f"{{{DC_NS}}}subject", tag)
    _el(dc, f"{{{DC_NS}}}type", fields["kind"])
    _el(dc, f"{{{DC_NS}}}language", fields.get("language") or "zh")
    _el(dc, f"{{{DC_NS}}}rights", fields["licence"])
    _el(
        dc,
        f"{{{DC_NS}}}identifier",
        current_app.config["SHARING_ORIGIN"].rstrip("/") + fields["url"],
    )


def _list(root, verb: str, args: dict):
    chosen, query, cursor = _select(args)
    page = current_app.config.get("SHARING_OAI_PAGE", PAGE)
    container = _el(root, f"{{{OAI_NS}}}{verb}")
    for record in chosen[cursor : cursor + page]:
        if verb == "ListIdentifiers":
            _header(container, record)
        else:
            _record(container, record)
    if cursor + page < len(chosen) or cursor:
        token = ""
        if cursor + page < len(chosen):
            token = _serializer().dumps(query | {"cursor": cursor + page})
        _el(
            container,
            f"{{{OAI_NS}}}resumptionToken",
            token,
            completeListSize=str(len(chosen)),
            cursor=str(cursor),
        )


def _identify(root):
    identify = _el(root, f"{{{OAI_NS}}}Identify")
    _el(identify, f"{{{OAI_NS}}}repositoryName", current_app.config.get("PLATFORM_NAME", "Shuyuan"))
    _el(identify, f"{{{OAI_NS}}}baseURL", _base_url())
    _el(identify, f"{{{OAI_NS}}}protocolVersion", "2.0")
    _el(
        identify,
        f"{{{OAI_NS}}}adminEmail",
        current_app.config.get("SHARING_OAI_ADMIN_EMAIL", "admin@localhost"),
    )
    earliest = db.session.execute(
        select(Release.created_at).order_by(Release.created_at).limit(1)
    ).scalar()
    _el(identify, f"{{{OAI_NS}}}earliestDatestamp", _stamp(earliest or datetime(2026, 1, 1)))
    _el(identify, f"{{{OAI_NS}}}deletedRecord", "persistent")
    _el(identify, f"{{{OAI_NS}}}granularity", GRANULARITY)


def _base_url() -> str:
    return current_app.config["SHARING_ORIGIN"].rstrip("/") + "/sharing/oai"


def _formats(root, args):
    if "identifier" in args:
        _get(args["identifier"])
    formats = _el(root, f"{{{OAI_NS}}}ListMetadataFormats")
    fmt = _el(formats, f"{{{OAI_NS}}}metadataFormat")
    _el(fmt, f"{{{OAI_NS}}}metadataPrefix", "oai_dc")
    _el(fmt, f"{{{OAI_NS}}}schema", "http://www.openarchives.org/OAI/2.0/oai_dc.xsd")
    _el(fmt, f"{{{OAI_NS}}}metadataNamespace", OAI_DC_NS)


def _sets(root, args):
    if "resumptionToken" in args:
        raise OAIError("badResumptionToken", "ListSets has no resumption tokens here.")
    _, catalogs = _records()
    container = _el(root, f"{{{OAI_NS}}}ListSets")
    for uid, catalog in sorted(catalogs.items()):
        entry = _el(container, f"{{{OAI_NS}}}set")
        _el(entry, f"{{{OAI_NS}}}setSpec", uid)
        _el(entry, f"{{{OAI_NS}}}setName", f"{catalog.title} ({publisher_label(catalog.district)})")


def _get(identifier: str) -> OAIRecord:
    prefix = f"oai:{_host()}:"
    records, _ = _records()
    if not isinstance(identifier, str) or not identifier.startswith(prefix):
        raise OAIError("idDoesNotExist", "Unknown identifier.")
    record = records.get(identifier[len(prefix) :])
    if record is None:
        raise OAIError("idDoesNotExist", "Unknown identifier.")
    return record


_ARGS = {
    "Identify": (set(), set()),
    "ListMetadataFormats": (set(), {"identifier"}),
    "ListSets": (set(), {"resumptionToken"}),
    "ListIdentifiers": (set(), {"metadataPrefix", "set", "from", "until", "resumptionToken"}),
    "ListRecords": (set(), {"metadataPrefix", "set", "from", "until", "resumptionToken"}),
    "GetRecord": ({"identifier", "metadataPrefix"}, set()),
}


@bp.route("/sharing/oai", methods=["GET", "POST"])
def endpoint():
    args = request.values.to_dict(flat=False)
    root = ET.Element(
        f"{{{OAI_NS}}}OAI-PMH",
        {
            f"{{{XSI_NS}}}schemaLocation": f"{OAI_NS} http://www.openarchives.org/OAI/2.0/OAI-PMH.xsd"
        },
    )
    _el(root, f"{{{OAI_NS}}}responseDate", _stamp(datetime.now(UTC).replace(tzinfo=None)))
    verb = (args.get("verb") or [None])[0]
    request_el = _el(root, f"{{{OAI_NS}}}request", _base_url())
    try:
        if any(len(values) > 1 for values in args.values()):
            raise OAIError("badArgument", "An argument is repeated.")
        flat = {k: v[0] for k, v in args.items()}
        if verb not in _ARGS:
            raise OAIError("badVerb", "Unknown or missing verb.")
        required, optional = _ARGS[verb]
        given = set(flat) - {"verb"}
        if required - given or given - required - optional:
            raise OAIError("badArgument", "Missing or unknown arguments.")
        for key, value in flat.items():
            request_el.set(key, value)
        if verb == "Identify":
            _identify(root)
        elif verb == "ListMetadataFormats":
            _formats(root, flat)
        elif verb == "ListSets":
            _sets(root, flat)
        elif verb == "GetRecord":
            if flat["metadataPrefix"] != "oai_dc":
                raise OAIError("cannotDisseminateFormat", "Only oai_dc is offered.")
            container = _el(root, f"{{{OAI_NS}}}GetRecord")
            _record(container, _get(flat["identifier"]))
        else:
            _list(root, verb, flat)
    except OAIError as error:
        for child in list(root)[2:]:
            root.remove(child)
        _el(root, f"{{{OAI_NS}}}error", error.message, code=error.code)
    body = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return Response(body, mimetype="text/xml")

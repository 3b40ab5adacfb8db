"""Output formats of statements: ``exact``, ``ids`` and ``canonical`` (one language)."""

from __future__ import annotations

import copy
import json

from app.xapi import schemas


def _ids_agent(agent: dict) -> dict:
    out = {"objectType": agent.get("objectType", "Agent")}
    for key in schemas.IFIS:
        if key in agent:
            out[key] = agent[key]
            break
    else:
        if "member" in agent:
            out["member"] = [_ids_agent(m) for m in agent["member"]]
    return out


def _format_ids(statement: dict, top: bool = True) -> dict:
    out = dict(statement)
    out["actor"] = _ids_agent(statement["actor"])
    out["verb"] = {"id": statement["verb"]["id"]}
    obj = statement["object"]
    kind = obj.get("objectType", "Activity")
    if kind == "Activity":
        out["object"] = {"id": obj["id"]}
    elif kind in ("Agent", "Group"):
        out["object"] = _ids_agent(obj)
    elif kind == "SubStatement":
        out["object"] = _format_ids(obj, top=False)
    if "context" in statement:
        context = dict(statement["context"])
        for key in ("instructor", "team"):
            if key in context:
                context[key] = _ids_agent(context[key])
        if "contextActivities" in context:
            context["contextActivities"] = {
                k: [{"id": a["id"]} for a in (v if isinstance(v, list) else [v])]
                for k, v in context["contextActivities"].items()
            }
        out["context"] = context
    if top and "authority" in statement:
        out["authority"] = _ids_agent(statement["authority"])
    return out


def _pick_language(language_map: dict, languages: list[str]) -> dict:
    if not isinstance(language_map, dict) or not language_map:
        return language_map
    lowered = {k.lower(): k for k in language_map}
    for lang in languages:
        lang = lang.lower()
        if lang in lowered:
            key = lowered[lang]
            return {key: language_map[key]}
        for candidate_lower, key in lowered.items():
            if candidate_lower.split("-")[0] == lang.split("-")[0]:
                return {key: language_map[key]}
    key = "und" if "und" in language_map else next(iter(language_map))
    return {key: language_map[key]}


def _format_canonical(statement: dict, languages: list[str]) -> dict:
    out = copy.deepcopy(statement)

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if (
                    key in ("display", "name", "description")
                    and isinstance(value, dict)
                    and all(isinstance(v, str) for v in value.values())
                ):
                    node[key] = _pick_language(value, languages)
                elif key != "extensions":
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(out)
    return out


def render_statement(row_full: dict, fmt: str, languages: list[str] | None = None) -> dict:
    if fmt == "ids":
        return _format_ids(row_full)
    if fmt == "canonical":
        return _format_canonical(row_full, languages or [])
    return row_full


def _dumps(data) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def statement_json(stored_json: str, fmt: str, languages: list[str] | None = None) -> str:
    """One statement as JSON text, from the JSON text the database holds.

    ``exact`` is that text itself: it is the statement as stored, and reading it into
    Python only to write the same JSON again was most of the rendering of a page
    (issue 14).  ``ids`` and ``canonical`` change the statement, so it is read first."""
    if fmt == "exact":
        return stored_json
    return _dumps(render_statement(json.loads(stored_json), fmt, languages))


def page_json(stored_jsons: list[str], fmt: str, languages: list[str] | None, more: str) -> str:
    """The StatementResult of a page, ``{"statements": [...], "more": ...}``, as JSON text."""
    statements = ",".join(statement_json(text, fmt, languages) for text in stored_jsons)
    return '{"statements":[' + statements + '],"more":' + _dumps(more) + "}"

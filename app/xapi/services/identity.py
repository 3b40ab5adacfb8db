"""Who a statement is about: identity keys of agents and activities, the xAPI actor of
a platform user, and the platform's own authority."""

from __future__ import annotations

import hashlib
import json

from flask import current_app

from app.accounts.models import District
from app.extensions import db
from app.xapi import schemas


def sha1(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8"), usedforsecurity=False).hexdigest()


def homepage() -> str:
    return current_app.config.get("XAPI_PLATFORM_URL", "http://localhost:5000").rstrip("/")


def platform_authority() -> dict:
    return {
        "objectType": "Agent",
        "name": current_app.config.get("PLATFORM_NAME", "Shuyuan"),
        "account": {"homePage": homepage(), "name": "shuyuan"},
    }


def user_district_id(user) -> int | None:
    if user.district_id:
        return user.district_id
    if user.school is not None:
        return user.school.district_id
    ids = sorted(user.member_district_ids())
    return ids[0] if ids else None


def actor_for(user) -> dict:
    """The xAPI Agent of a platform user: an account on the tenant's home page, named by
    the stable public id (never the email)."""
    district = db.session.get(District, user_district_id(user)) if user_district_id(user) else None
    home = f"{homepage()}/d/{district.code}" if district else homepage()
    return {"objectType": "Agent", "account": {"homePage": home, "name": user.public_id}}


# --- identity keys -------------------------------------------------------------------------


def agent_key(agent: dict) -> str:
    """The identity of an Agent or identified Group, as one string."""
    if "mbox" in agent:
        return "mbox:" + agent["mbox"].lower()
    if "mbox_sha1sum" in agent:
        return "sha1:" + agent["mbox_sha1sum"].lower()
    if "openid" in agent:
        return "openid:" + agent["openid"]
    if "account" in agent:
        return "account:" + agent["account"]["homePage"] + "|" + agent["account"]["name"]
    members = sorted(agent_key(m) for m in agent.get("member") or [])
    return "group:" + ";".join(members)


def _agents_in(agent: dict | None) -> list[str]:
    if not isinstance(agent, dict):
        return []
    keys = [agent_key(agent)]
    for member in agent.get("member") or []:
        keys.append(agent_key(member))
    return keys


def _context_activities(context: dict | None) -> list[str]:
    ids = []
    for value in ((context or {}).get("contextActivities") or {}).values():
        for activity in value if isinstance(value, list) else [value]:
            ids.append(activity["id"])
    return ids


def statement_relations(statement: dict) -> tuple[set[str], set[str]]:
    """(agent keys, activity ids) mentioned anywhere in a statement."""
    agents: set[str] = set()
    activities: set[str] = set()

    def visit(stmt: dict, top: bool):
        agents.update(_agents_in(stmt.get("actor")))
        obj = stmt.get("object") or {}
        kind = obj.get("objectType", "Activity")
        if kind == "Activity":
            activities.add(obj["id"])
        elif kind in ("Agent", "Group"):
            agents.update(_agents_in(obj))
        elif kind == "SubStatement":
            visit(obj, False)
        context = stmt.get("context") or {}
        agents.update(_agents_in(context.get("instructor")))
        agents.update(_agents_in(context.get("team")))
        for item in context.get("contextAgents") or []:
            agents.update(_agents_in(item.get("agent")))
        for item in context.get("contextGroups") or []:
            agents.update(_agents_in(item.get("group")))
        activities.update(_context_activities(context))
        if top:
            agents.update(_agents_in(stmt.get("authority")))

    visit(statement, True)
    return agents, activities


def object_key(obj: dict) -> tuple[str, str, str | None]:
    """(objectType, hash, referenced statement id)."""
    kind = obj.get("objectType", "Activity")
    if kind == "Activity":
        return kind, sha1(obj["id"]), None
    if kind in ("Agent", "Group"):
        return kind, sha1(agent_key(obj)), None
    if kind == "StatementRef":
        return kind, sha1(obj["id"].lower()), obj["id"].lower()
    return kind, sha1(json.dumps(obj, sort_keys=True)), None


def person_for(agent: dict) -> dict:
    person: dict = {"objectType": "Person"}
    if "name" in agent:
        person["name"] = [agent["name"]]
    for key in schemas.IFIS:
        if key in agent:
            person[key] = [agent[key]]
    return person

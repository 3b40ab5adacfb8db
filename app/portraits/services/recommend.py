"""Explained recommendations.

Candidates: published resources the student may see, aligned to the knowledge points of
the lessons her class learns this week and learnt last week (from the class teaching
calendar, in her edition or an exactMatchOf-equivalent lesson), for knowledge points she
has not mastered.

Ranking — expected mastery gain of resource r for student s on skill k:

    ℓ(r,k)  = (helped(r,k) + A · learn(k)) / (users(r,k) + A)
    gain    = (1 − m(s,k)) · ℓ(r,k) · w(week) · f(s,r)

m(s,k) is her mastery (the skill's BKT prior when she has no answers yet); users(r,k)
counts students who used r right after a wrong answer on k and helped(r,k) those of them
whose next answer on k was right (learnt at each rebuild); learn(k) is the skill's BKT
learn rate, the prior mean, with A = 5 pseudo-students; w = 1 for this week and 0.8 for
last week; f = 0.5 once she has opened r from a recommendation, and r is dropped for k
after "already know it" and everywhere after "not useful".
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field
from functools import cache

from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import and_, bindparam, select

from app.errors import Invalid, NotFound
from app.extensions import db
from app.i18n import catalogue_locale
from app.portraits import sources, syllabus
from app.portraits.models import (
    Assignment,
    Feedback,
    Generation,
    Mastery,
    ResourceGain,
    SkillParams,
)
from app.portraits.services import bkt, model, queries

PSEUDO_STUDENTS = 5.0
WEEK_WEIGHT = {0: 1.0, -1: 0.8}
SEEN_FACTOR = 0.5
PREVIEW_RESOURCES = 3  # resources shown per lesson of next week
ACTIONS = ("clicked", "not_useful", "known")


def weak_threshold() -> float:
    return float(current_app.config.get("PORTRAITS_WEAK", 0.6))


@dataclass
class Recommendation:
    resource: object
    skill: str
    knowledge_point: str
    knowledge_point_title: str
    mastery: float | None
    week: int
    gain: float
    helped: int
    users: int
    explanation: str
    offset: int


@dataclass
class Recommendations:
    this_week: list = field(default_factory=list)
    last_week: list = field(default_factory=list)
    next_week: list = field(default_factory=list)
    extended: list = field(default_factory=list)
    assigned: list = field(default_factory=list)


KIND_NAMES = {
    "video": ("视频", "video"),
    "audio": ("音频", "audio"),
    "document": ("文档", "document"),
    "exercise": ("练习", "exercise"),
    "interactive": ("互动练习", "interactive exercise"),
    "link": ("网页", "web page"),
}


def explain(
    locale: str | None,
    title: str,
    mastery: float | None,
    week: int,
    kind: str,
    helped: int,
    users: int,
    gain: float,
) -> str:
    """One sentence naming the knowledge point, her mastery and the week, in ``locale``
    (not necessarily the request's: gettext is pointed at it for this sentence)."""
    english = bool(locale) and not str(locale).startswith("zh")
    # catalogue_locale, not the string: Locale.parse("zh_CN") is zh_Hans_CN, which names
    # no translation folder, and the sentence would silently stay in English.
    target = catalogue_locale("en" if english else "zh_CN")
    with force_locale(target) if locale else nullcontext():
        return _explanation(title, mastery, week, kind, helped, users, gain, english)


def _explanation(
    title: str,
    mastery: float | None,
    week: int,
    kind: str,
    helped: int,
    users: int,
    gain: float,
    english: bool,
) -> str:
    kind_name = KIND_NAMES.get(kind, ("资源", "resource"))[1 if english else 0]
    level = f"{mastery:.2f}" if mastery is not None else "—"
    if users >= 3:
        why = _(
            "it helped %(helped)s of %(users)s classmates who were stuck there",
            helped=helped,
            users=users,
        )
    else:
        rounded = f"{gain:.2f}"
        why = _("expected mastery gain %(gain)s", gain=rounded)
    return _(
        "%(kp)s: mastery %(mastery)s, taught in week %(week)s — try this %(kind)s: %(why)s.",
        kp=title,
        mastery=level,
        week=week,
        kind=kind_name,
        why=why,
    )


# The statements of one call are built once per process, every per-call value a bind
# parameter: building them was most of a warm call's client time (issue 14, seventh
# round).


@cache
def _feedback_statement():
    return select(Feedback.action, Feedback.resource_content_id, Feedback.skill).where(
        Feedback.user_id == bindparam("user_id")
    )


def _feedback(user_id: int) -> tuple[set, set, set]:
    not_useful, known, clicked = set(), set(), set()
    # Rows, not entities (only three columns are read).
    for action, content_id, skill in db.session.execute(
        _feedback_statement(), {"user_id": user_id}
    ):
        if action == "not_useful":
            not_useful.add(content_id)
        elif action == "known":
            known.add((content_id, skill))
        else:
            clicked.add(content_id)
    return not_useful, known, clicked


def recommend(
    viewer, student_id: int | None = None, locale: str | None = None, limit: int = 8
) -> Recommendations:
    student = queries.require_student(
        viewer, student_id if student_id is not None else getattr(viewer, "id", None)
    )
    generation_id, masteries = _generation_and_masteries(student.id)
    not_useful, known, clicked = _feedback(student.id)
    threshold = weak_threshold()
    out = Recommendations()
    # This, last and next week's lessons in one pass (without their resources), their
    # equivalents, then one statement each for the model's data on their skills.
    weeks = syllabus.syllabus_weeks(student, (0, -1, 1))
    # The exactMatchOf equivalents of every lesson and knowledge point of the three
    # weeks, once: the canonical skills and the aligned resources' equivalent nodes both
    # come from them (one recursive statement; it was one for each: issue 14, fifth round).
    matches = sources.equivalent_identifiers(
        {
            node.identifier
            for offset in (0, -1, 1)
            for week in weeks[offset]
            for lesson in week["lessons"]
            for node in (lesson["node"], *lesson["knowledge_points"])
        }
    )
    per_offset = []
    identifiers: set[str] = set()
    for offset in (0, -1):
        entries = []
        for week in weeks[offset]:
            for lesson in week["lessons"]:
                kps = lesson["knowledge_points"]
                if not kps:
                    continue
                identifiers.update(kp.identifier for kp in kps)
                entries.append((week["week"], lesson["node"], kps, {kp.id: kp for kp in kps}))
        per_offset.append((offset, entries))
    canonical = {identifier: min(matches[identifier]) for identifier in identifiers}
    params, gains = _model_data(generation_id, set(canonical.values()))
    # Per knowledge point (not per resource): its skill, mastery and the ranking's
    # resource-independent terms; None when she has mastered it.
    targets_of: dict[str, tuple | None] = {}
    for identifier in identifiers:
        skill = canonical.get(identifier, identifier)
        mastery = masteries.get(skill)
        if mastery is not None and mastery >= threshold:
            targets_of[identifier] = None
            continue
        p = params.get(skill)
        learn = p.learn if p is not None else bkt.DEFAULT.learn
        base = mastery if mastery is not None else (p.prior if p is not None else bkt.DEFAULT.prior)
        targets_of[identifier] = (skill, mastery, learn, 1.0 - base)
    # Scored one by one (so never cut by the SQL preselection): the resources of her
    # feedback and those with a learnt gain on the skills — both already read above, so
    # the ranked statement takes them as an array instead of selecting them again (it
    # did so three times: 1,332 of its 5,287 buffers at 100 k, docs/portraits.md).
    special_ids = not_useful | clicked | {content_id for content_id, _skill in known}
    special_ids.update(content_id for content_id, _skill in gains)
    aligned = _aligned(student, weeks, per_offset, special_ids, limit, matches)
    for (offset, entries), bucket in zip(per_offset, (out.this_week, out.last_week), strict=True):
        weight = WEEK_WEIGHT[offset]
        candidates: dict[str, Recommendation] = {}
        kp_of: dict[str, object] = {}  # content id → the knowledge point of its candidate
        for week_number, lesson, kps, by_node in entries:
            for row in aligned.get(lesson.id, []):
                content_id = row.resource.content_id
                if content_id in not_useful:
                    continue
                targets = [by_node[row.node_id]] if row.node_id in by_node else kps
                for kp in targets:
                    target = targets_of[kp.identifier]
                    if target is None:
                        continue
                    skill, mastery, learn, missing = target
                    if (content_id, skill) in known:
                        continue
                    gain_row = gains.get((content_id, skill))
                    helped, users = gain_row if gain_row else (0, 0)
                    rate = (helped + PSEUDO_STUDENTS * learn) / (users + PSEUDO_STUDENTS)
                    score = missing * rate * weight
                    if content_id in clicked:
                        score *= SEEN_FACTOR
                    best = candidates.get(content_id)
                    if best is not None and best.gain >= score:
                        continue
                    candidates[content_id] = Recommendation(
                        resource=row.resource,
                        skill=skill,
                        knowledge_point=kp.identifier,
                        knowledge_point_title="",  # set below, for the items shown
                        mastery=mastery,  # unrounded until shown
                        week=week_number,
                        gain=score,
                        helped=helped,
                        users=users,
                        explanation="",
                        offset=offset,
                    )
                    kp_of[content_id] = kp
        # Ties of gain and title by content id: the order the SQL preselection in
        # _aligned keeps (it was the order in which the lessons listed them).
        shown = sorted(
            candidates.values(),
            key=lambda r: (-r.gain, r.resource.title, r.resource.content_id),
        )[:limit]
        # The titles and the (translated) explanation only for what is shown.
        for rec in shown:
            title = queries._title(kp_of[rec.resource.content_id], locale)
            rec.knowledge_point_title = title
            rec.explanation = explain(
                locale,
                title,
                rec.mastery,
                rec.week,
                rec.resource.kind,
                rec.helped,
                rec.users,
                rec.gain,
            )
            rec.mastery = round(rec.mastery, 3) if rec.mastery is not None else None
        bucket.extend(shown)
    out.next_week = _preview(weeks[1], aligned, locale)
    out.extended = _extended(student)
    out.assigned = _assigned(student)
    return out


@cache
def _masteries_statement():
    """The served generation (``model.active_generation``'s) and her masteries in it: a
    row with no skill when she has none, no row when no generation is served."""
    return (
        select(Generation.id, Mastery.skill, Mastery.p_known)
        .outerjoin(
            Mastery,
            and_(Mastery.generation_id == Generation.id, Mastery.user_id == bindparam("user_id")),
        )
        .where(Generation.id == model.active_generation_id().scalar_subquery())
    )


def _generation_and_masteries(user_id: int) -> tuple[int | None, dict[str, float]]:
    """The served generation's id and her skill → mastery (``p_known``) in it: one
    statement (the generation and her masteries, as entities, were two: issue 14,
    seventh round), so both come from the same generation."""
    rows = db.session.execute(_masteries_statement(), {"user_id": user_id}).all()
    masteries = {skill: p_known for _id, skill, p_known in rows if skill is not None}
    return (rows[0][0] if rows else None), masteries


@dataclass(frozen=True, slots=True)
class _Params:
    """What the ranking reads of a skill's ``SkillParams``."""

    prior: float
    learn: float


@cache
def _model_statements():
    generation, skills = bindparam("generation_id"), bindparam("skills", expanding=True)
    params = select(SkillParams.skill, SkillParams.prior, SkillParams.learn).where(
        SkillParams.generation_id == generation, SkillParams.skill.in_(skills)
    )
    gains = select(
        ResourceGain.resource_content_id,
        ResourceGain.skill,
        ResourceGain.helped,
        ResourceGain.users,
    ).where(ResourceGain.generation_id == generation, ResourceGain.skill.in_(skills))
    return params, gains


def _model_data(generation_id: int | None, skills: set[str]) -> tuple[dict, dict]:
    """Skill → its prior and learn rate, and (resource, skill) → (helped, users) of the
    learnt gains."""
    if generation_id is None or not skills:
        return {}, {}
    params_statement, gains_statement = _model_statements()
    values = {"generation_id": generation_id, "skills": sorted(skills)}
    params = {
        skill: _Params(prior, learn)
        for skill, prior, learn in db.session.execute(params_statement, values)
    }
    gains = {
        (content_id, skill): (helped, users)
        for content_id, skill, helped, users in db.session.execute(gains_statement, values)
    }
    return params, gains


def _aligned(
    student, weeks: dict, per_offset: list, special_ids: set[str], limit: int, matches: dict
):
    """Lesson id → the aligned resources the ranking and the preview can need
    (``syllabus.ranked_alignments``): of this and last week's lessons, those with a
    learnt gain on their skills or her feedback (scored one by one) and the first
    ``limit`` by title of each knowledge point or lesson (all the others there score the
    same and come later by title); of next week's lessons, the first 3 listed."""
    rank = {lesson.id for _offset, entries in per_offset for _w, lesson, _k, _b in entries}
    preview = {lesson["node"].id for week in weeks[1] for lesson in week["lessons"]}
    lessons = {
        lesson["node"].id: lesson
        for offset in (0, -1, 1)
        for week in weeks[offset]
        for lesson in week["lessons"]
    }

    return syllabus.ranked_alignments(
        student,
        [lesson["node"] for lesson in lessons.values()],
        {lesson["node"].identifier: lesson["knowledge_points"] for lesson in lessons.values()},
        rank,
        preview,
        special_ids,
        per_slot=limit,
        preview_size=PREVIEW_RESOURCES,
        matches=matches,
    )


def _preview(weeks: list, aligned: dict, locale) -> list[dict]:
    """Next week's lessons (``weeks``: its weeks of ``syllabus.syllabus_weeks``)."""
    out = []
    for week in weeks:
        for lesson in week["lessons"]:
            out.append(
                {
                    "week": week["week"],
                    "lesson": queries._title(lesson["node"], locale),
                    "knowledge_points": [
                        queries._title(kp, locale) for kp in lesson["knowledge_points"]
                    ],
                    "resources": [a.resource for a in aligned.get(lesson["node"].id, [])][
                        :PREVIEW_RESOURCES
                    ],
                }
            )
    return out


def _extended(student, limit: int = 4) -> list:
    """Extended courses in her top 3 interest categories she is not enrolled in: one
    statement (the categories and her enrolments are sub-selects; they were a statement
    each, the enrolments' courses one more, and the courses were cut to 12 before the
    enrolled ones were dropped, so more than 8 enrolled among them left fewer than
    ``limit``: issue 14, fifth round), built once per process and reader (seventh)."""
    return sources.extended_courses(student, _top_categories(), limit, not_enrolled=True)


@cache
def _top_categories():
    """Her top 3 interest categories (``user_id``: her id), as a select built once (the
    extended courses' statement is kept per select object)."""
    from app.portraits.models import Interest

    return (
        select(Interest.category)
        .where(Interest.user_id == bindparam("user_id"))
        .order_by(Interest.seconds.desc(), Interest.events.desc())
        .limit(3)
    )


@cache
def _assigned_statement():
    """The newest 50 assignments of her classes (``user_id``: her id), built once."""
    return (
        select(Assignment)
        .where(Assignment.class_id.in_(sources.class_ids_of_user_id("student")))
        .order_by(Assignment.created_at.desc())
        .limit(50)
    )


def _assigned(student) -> list[dict]:
    # Her classes inside the statement (they were a statement of their own, with every
    # class entity, its school and editions loaded: issue 14).
    rows = [
        a
        for a in db.session.execute(_assigned_statement(), {"user_id": student.id}).scalars()
        if student.id in (a.student_ids or [])
    ]
    resources = sources.visible_resources(student, [a.resource_content_id for a in rows])
    return [
        {"assignment": a, "resource": resources[a.resource_content_id]}
        for a in rows
        if a.resource_content_id in resources
    ]


# --- feedback and assignments ------------------------------------------------------------


def record_feedback(user, content_id: str, action: str, skill: str | None = None) -> Feedback:
    """A click or a dismissal: stored (it changes the next recommendations) and reported
    as xAPI (``interacted`` for a click, ``skipped`` with the reason for a dismissal)."""
    queries._require(user)
    if action not in ACTIONS:
        raise Invalid(_("Unknown action."), fields={"action": [", ".join(ACTIONS)]})
    if skill is not None and (not isinstance(skill, str) or len(skill) > 64):
        raise Invalid(_("Unknown knowledge point."), fields={"skill": ["string"]})
    resource = (
        sources.visible_resources(user, [content_id]).get(content_id)
        if isinstance(content_id, str)
        else None
    )
    if resource is None:
        raise NotFound(_("Resource not found."))
    row = Feedback(user_id=user.id, resource_content_id=content_id, skill=skill, action=action)
    db.session.add(row)
    db.session.flush()
    from app import signals

    verb = (
        {
            "id": "http://adlnet.gov/expapi/verbs/interacted",
            "display": {"en-US": "interacted", "zh-CN": "点击"},
        }
        if action == "clicked"
        else {
            "id": "http://id.tincanapi.com/verb/skipped",
            "display": {"en-US": "skipped", "zh-CN": "忽略"},
        }
    )
    statement = {
        "verb": verb,
        "object": {
            "objectType": "Activity",
            "id": f"{sources.resource_activity_prefix()}{content_id}#recommendation",
            "definition": {"type": "http://adlnet.gov/expapi/activities/interaction"},
        },
        "result": {"response": action},
    }
    signals.send_learning_event(
        user,
        "recommendation",
        resource=resource,
        context={
            "statement": statement,
            "knowledge_points": [skill] if skill else [],
            "via": "recommendation",
        },
    )
    return row


def assign(
    teacher, class_id: int, content_id: str, skill: str | None, student_ids: list[int] | None
) -> Assignment:
    """Assign a resource to a group of the class: the given students, or by default
    those whose mastery of ``skill`` is below the weak threshold."""
    school_class = queries.require_class_teacher(teacher, class_id)
    resource = (
        sources.visible_resources(teacher, [content_id]).get(content_id)
        if isinstance(content_id, str)
        else None
    )
    if resource is None:
        raise NotFound(_("Resource not found."))
    members = {s.id for s in sources.class_students(school_class)}
    if student_ids is None:
        if not skill:
            raise Invalid(
                _("Choose students or a knowledge point."), fields={"student_ids": ["required"]}
            )
        student_ids = [
            user_id
            for user_id in sorted(members)
            if (m := queries.mastery_of(user_id).get(skill)) is None or m.p_known < weak_threshold()
        ]
    if not isinstance(student_ids, list) or not all(
        isinstance(i, int) and not isinstance(i, bool) for i in student_ids
    ):
        raise Invalid(
            _("Students must be a list of ids."), fields={"student_ids": ["list of integers"]}
        )
    outsiders = set(student_ids) - members
    if outsiders:
        raise Invalid(
            _("Some students are not in this class."),
            fields={"student_ids": sorted(outsiders)[:20]},
        )
    if not student_ids:
        raise Invalid(_("Nobody to assign to."), fields={"student_ids": ["empty"]})
    row = Assignment(
        class_id=school_class.id,
        resource_content_id=content_id,
        skill=skill,
        student_ids=sorted(set(student_ids)),
        assigned_by_id=teacher.id,
    )
    db.session.add(row)
    db.session.flush()
    return row

"""JSON API: /api/v1/portraits/... and /api/v1/recommendations."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from app.accounts.auth import actor
from app.i18n import current_language
from app.portraits import schemas
from app.portraits.services import queries, recommend

blp = Blueprint(
    "portraits_api",
    __name__,
    url_prefix="/api/v1",
    description="Digital portraits (mastery per knowledge point, engagement) "
    "and explained recommendations",
)


def _portrait_out(p) -> dict:
    return {
        "student_id": p.student.id,
        "name": p.student.name,
        "skills": p.skills,
        "volumes": p.volumes,
        "trend": p.trend,
        "engagement": p.engagement,
        "interests": p.interests,
    }


@blp.route("/portraits/me")
class MyPortrait(MethodView):
    @blp.response(200, schemas.PortraitOut)
    def get(self):
        """The caller's own portrait."""
        user = actor()
        return _portrait_out(queries.portrait(user, getattr(user, "id", None), current_language()))


@blp.route("/portraits/students/<int:student_id>")
class StudentPortrait(MethodView):
    @blp.response(200, schemas.PortraitOut)
    def get(self, student_id):
        """A student's portrait: the student herself or a teacher of one of her classes
        (anyone else: 404)."""
        return _portrait_out(queries.portrait(actor(), student_id, current_language()))


@blp.route("/portraits/classes/<int:class_id>/heatmap")
class ClassHeatMap(MethodView):
    @blp.response(200, schemas.HeatMapOut)
    def get(self, class_id):
        """Students × this week's knowledge points of a class (its teachers only)."""
        return queries.class_heatmap(actor(), class_id, current_language())


@blp.route("/portraits/classes/<int:class_id>/assignments")
class ClassAssignments(MethodView):
    @blp.arguments(schemas.AssignIn)
    @blp.response(201, schemas.AssignOut)
    def post(self, data, class_id):
        """Assign a resource to a group of the class (default: the students whose mastery
        of ``skill`` is weak)."""
        return recommend.assign(
            actor(), class_id, data["content_id"], data["skill"], data["student_ids"]
        )


@blp.route("/portraits/districts/<int:district_id>")
class DistrictAggregates(MethodView):
    @blp.response(200, schemas.DistrictOut)
    def get(self, district_id):
        """Mean mastery by school and knowledge point (district admins); groups under
        the minimum size are hidden, no student is named."""
        return queries.district_aggregates(actor(), district_id, current_language())


def _rec_out(rec, locale) -> dict:
    return {
        "content_id": rec.resource.content_id,
        "title": rec.resource.translated("title", locale),
        "kind": rec.resource.kind,
        "skill": rec.skill,
        "knowledge_point": rec.knowledge_point,
        "knowledge_point_title": rec.knowledge_point_title,
        "mastery": rec.mastery,
        "week": rec.week,
        "expected_gain": round(rec.gain, 4),
        "helped": rec.helped,
        "users": rec.users,
        "explanation": rec.explanation,
    }


@blp.route("/recommendations")
class Recommendations(MethodView):
    @blp.arguments(schemas.RecommendationsQuery, location="query")
    @blp.response(200, schemas.RecommendationsOut)
    def get(self, args):
        """Explained recommendations for this and last week, a preview of next week,
        extended courses by interest and the teacher's assignments."""
        locale = current_language()
        user = actor()
        recs = recommend.recommend(user, args.get("student_id"), locale)
        return {
            "this_week": [_rec_out(r, locale) for r in recs.this_week],
            "last_week": [_rec_out(r, locale) for r in recs.last_week],
            "next_week": [
                {
                    **item,
                    "resources": [
                        {"content_id": r.content_id, "title": r.translated("title", locale)}
                        for r in item["resources"]
                    ],
                }
                for item in recs.next_week
            ],
            "extended": [
                {
                    "content_id": c.content_id,
                    "title": c.translated("title", locale),
                    "category": c.category,
                }
                for c in recs.extended
            ],
            "assigned": [
                {
                    "content_id": a["resource"].content_id,
                    "title": a["resource"].translated("title", locale),
                    "skill": a["assignment"].skill,
                }
                for a in recs.assigned
            ],
        }


@blp.route("/recommendations/feedback")
class RecommendationFeedback(MethodView):
    @blp.arguments(schemas.FeedbackIn)
    @blp.response(201, schemas.FeedbackOut)
    def post(self, data):
        """Record a click or a dismissal ("not_useful", "known"); also sent as xAPI."""
        return recommend.record_feedback(actor(), data["content_id"], data["action"], data["skill"])

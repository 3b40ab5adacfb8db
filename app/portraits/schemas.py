"""Marshmallow schemas of the portraits API (in: checked input; out: documented output)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate


class SkillOut(Schema):
    skill = fields.String()
    title = fields.String()
    mastery = fields.Float()
    level = fields.String(metadata={"description": "weak | developing | mastered | none"})
    method = fields.String(metadata={"description": "bkt or elo"})
    answers = fields.Integer()
    correct = fields.Integer()


class TrendPointOut(Schema):
    day = fields.String()
    average = fields.Float(allow_none=True)
    mastery = fields.Dict(keys=fields.String(), values=fields.Float())


class EngagementOut(Schema):
    active_days = fields.Integer()
    seconds = fields.Integer()
    completions = fields.Integer()
    answers = fields.Integer()
    days = fields.List(fields.Dict())


class InterestOut(Schema):
    category = fields.String()
    seconds = fields.Integer()
    events = fields.Integer()


class PortraitOut(Schema):
    student_id = fields.Integer()
    name = fields.String()
    skills = fields.List(fields.Nested(SkillOut))
    volumes = fields.List(
        fields.Dict(), metadata={"description": "units → lessons → knowledge points with mastery"}
    )
    trend = fields.List(fields.Nested(TrendPointOut))
    engagement = fields.Nested(EngagementOut)
    interests = fields.List(fields.Nested(InterestOut))


class RecommendationOut(Schema):
    content_id = fields.String()
    title = fields.String()
    kind = fields.String()
    skill = fields.String()
    knowledge_point = fields.String()
    knowledge_point_title = fields.String()
    mastery = fields.Float(allow_none=True)
    week = fields.Integer()
    expected_gain = fields.Float()
    helped = fields.Integer()
    users = fields.Integer()
    explanation = fields.String()


class PreviewOut(Schema):
    week = fields.Integer()
    lesson = fields.String()
    knowledge_points = fields.List(fields.String())
    resources = fields.List(fields.Dict())


class RecommendationsOut(Schema):
    this_week = fields.List(fields.Nested(RecommendationOut))
    last_week = fields.List(fields.Nested(RecommendationOut))
    next_week = fields.List(fields.Nested(PreviewOut))
    extended = fields.List(fields.Dict())
    assigned = fields.List(fields.Dict())


class RecommendationsQuery(Schema):
    student_id = fields.Integer(metadata={"description": "A teacher's student; default: yourself"})


class FeedbackIn(Schema):
    content_id = fields.String(required=True, validate=validate.Length(min=1, max=36))
    action = fields.String(
        required=True, validate=validate.OneOf(["clicked", "not_useful", "known"])
    )
    skill = fields.String(validate=validate.Length(min=1, max=64), load_default=None)


class FeedbackOut(Schema):
    id = fields.Integer()
    content_id = fields.String(attribute="resource_content_id")
    action = fields.String()
    skill = fields.String(allow_none=True)


class HeatCellOut(Schema):
    mastery = fields.Float(allow_none=True)
    level = fields.String()
    answers = fields.Integer()


class HeatRowOut(Schema):
    student = fields.Dict()
    cells = fields.List(fields.Nested(HeatCellOut))


class HeatMapOut(Schema):
    class_ = fields.Dict(data_key="class", attribute="class")
    week = fields.Integer(allow_none=True)
    columns = fields.List(fields.Dict())
    rows = fields.List(fields.Nested(HeatRowOut))


class AssignIn(Schema):
    content_id = fields.String(required=True, validate=validate.Length(min=1, max=36))
    skill = fields.String(validate=validate.Length(min=1, max=64), load_default=None)
    student_ids = fields.List(
        fields.Integer(strict=True), validate=validate.Length(max=500), load_default=None
    )


class AssignOut(Schema):
    id = fields.Integer()
    class_id = fields.Integer()
    content_id = fields.String(attribute="resource_content_id")
    skill = fields.String(allow_none=True)
    student_ids = fields.List(fields.Integer())


class AggregateOut(Schema):
    school = fields.String()
    skill = fields.String()
    title = fields.String()
    students = fields.Integer()
    mean_mastery = fields.Float()
    mastered_share = fields.Float()


class DistrictOut(Schema):
    min_group_size = fields.Integer()
    hidden_groups = fields.Integer()
    groups = fields.List(fields.Nested(AggregateOut))

"""An explanation is written in the locale it is asked for, whatever the request's."""

from __future__ import annotations

from app.portraits.services.recommend import explain


def test_an_english_explanation_inside_a_chinese_request_is_english(app):
    with app.test_request_context("/", headers={"Accept-Language": "zh-CN"}):
        chinese = explain("zh_CN", "分数", 0.4, 3, "video", 0, 0, 0.12)
        english = explain("en", "Fractions", 0.4, 3, "video", 0, 0, 0.12)
        mastered_by_classmates = explain("en", "Fractions", 0.4, 3, "video", 3, 4, 0.12)
    assert "video" in english and "taught in week 3" in english
    assert "expected mastery gain 0.12" in english
    assert "it helped 3 of 4 classmates" in mastered_by_classmates
    assert "视频" in chinese and "taught in week" not in chinese


def test_without_a_locale_the_request_s_is_used(app):
    with app.test_request_context("/", headers={"Accept-Language": "en"}):
        assert "taught in week 2" in explain(None, "Fractions", None, 2, "pdf", 0, 0, 0.0)

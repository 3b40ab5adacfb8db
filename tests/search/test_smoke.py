from app.catalog.models import Course, Resource
from app.search import services
from tests.search.helpers import publish as make_content


def test_publish_then_find(ctx, orgs, make_user):
    teacher = make_user("teacher")
    make_content(
        teacher,
        Course,
        title="京剧脸谱入门",
        summary="认识京剧的脸谱与行当",
        translations={"en": {"title": "Peking opera masks"}},
    )
    make_content(
        teacher,
        Resource,
        title="分数的加法 微课",
        kind="video",
        subject="math",
        grades=["g5", "g6"],
    )
    for q in [
        "京剧",
        "jingju",
        "jj",
        "Peking opera",
        "分数加法",
        "视频",
        "五年级 数学",
        "masks",
        "京居",
        "pekin",
    ]:
        r = services.search(None, q)
        print(
            q,
            r.total,
            [(h.title_html, h.snippet_html) for h in r.items],
            r.facets.get("grade"),
            r.did_you_mean,
            r.filters,
        )

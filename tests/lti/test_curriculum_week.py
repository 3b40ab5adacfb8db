"""Deep linking a whole syllabus week, and launching into a week (curriculum feature)."""

from __future__ import annotations

import requests

from tests.lti.platform import INSTRUCTOR, parse_form


def test_deep_link_a_whole_week_then_launch_into_it(live, platform, registered, browser, week_plan):
    hint = platform.prepare(
        sub="tea-week", roles=[INSTRUCTOR], message_type="LtiDeepLinkingRequest"
    )
    response = platform.launch(browser, live, hint)
    picker_url = live + response.headers["Location"]
    page = browser.get(picker_url, params={"calendar": week_plan["calendar_id"], "week": 3})
    assert page.status_code == 200 and "第三周练习" in page.text
    selection = f"week:{week_plan['calendar_id']}:3"
    answer = browser.post(picker_url, data={"items": [selection]})
    action, fields = parse_form(answer.text, "lti-deep-link-return")
    assert requests.post(action, data=fields, timeout=10).status_code == 200
    claims = platform.deep_link_responses[-1]["claims"]
    items = claims["https://purl.imsglobal.org/spec/lti-dl/claim/content_items"]
    assert [i["custom"]["resource"] for i in items] == week_plan["content_ids"]
    assert all(i["custom"]["week"] == "3" for i in items)
    assert "lineItem" in items[1] and "lineItem" not in items[0]  # the exercise is graded
    # A student clicks the week link in the LMS.
    custom = {"calendar": str(week_plan["calendar_id"]), "week": "3"}
    with requests.Session() as student:
        launch = platform.launch(student, live, platform.prepare(sub="stu-week", custom=custom))
        assert launch.status_code == 302, launch.text[:600]
        assert launch.headers["Location"].endswith(f"/lti/week/{week_plan['calendar_id']}/3")
        page = student.get(live + launch.headers["Location"])
        assert page.status_code == 200 and "第三周微课" in page.text
    with requests.Session() as other:
        bad = platform.launch(
            other, live, platform.prepare(sub="s2", custom={"calendar": "x", "week": "3"})
        )
        assert bad.status_code == 400

"""Every attack on the launch is refused with a 4xx page, never a 500, and stores nothing."""

from __future__ import annotations

import time

import pytest
import requests
from sqlalchemy import func, select

from app.common.events import commit
from app.extensions import db
from app.lti.models import LtiIdentity
from app.lti.services import registrations
from tests.lti.helpers import published_resource, refused
from tests.lti.platform import new_rsa, parse_form


def _no_user_created():
    db.session.expire_all()
    assert db.session.execute(select(func.count(LtiIdentity.id))).scalar() == 0


def _other_key(claims, header, pem):
    other_pem, _, _ = new_rsa()
    return claims, header, other_pem


def _alg_none(claims, header, pem):
    return claims, {"alg": "none", "kid": header["kid"]}, None


def _expired(claims, header, pem):
    claims.update(iat=int(time.time()) - 7200, exp=int(time.time()) - 3600)
    return claims, header, pem


def _future(claims, header, pem):
    claims.update(
        iat=int(time.time()) + 3600, nbf=int(time.time()) + 3600, exp=int(time.time()) + 7200
    )
    return claims, header, pem


def _no_exp(claims, header, pem):
    claims.pop("exp")
    return claims, header, pem


def _wrong_aud(claims, header, pem):
    claims["aud"] = "someone-else"
    return claims, header, pem


def _wrong_azp(claims, header, pem):
    claims["aud"] = [claims["aud"]]
    claims["azp"] = "another-client"
    return claims, header, pem


def _many_aud_no_azp(claims, header, pem):
    claims["aud"] = [claims["aud"], "another-client"]
    return claims, header, pem


def _unknown_issuer(claims, header, pem):
    claims["iss"] = "https://evil.example"
    return claims, header, pem


def _unissued_nonce(claims, header, pem):
    claims["nonce"] = "never-issued-nonce"
    return claims, header, pem


def _unknown_kid(claims, header, pem):
    return claims, {"kid": "not-a-key"}, pem


CASES = [
    ("bad_signature", _other_key, 400, "lti_bad_signature"),
    ("alg_none", _alg_none, 400, "lti_bad_token"),
    ("expired", _expired, 400, "lti_expired"),
    ("not_yet_valid", _future, 400, "lti_not_yet_valid"),
    ("missing_exp", _no_exp, 400, "lti_bad_signature"),
    ("wrong_aud", _wrong_aud, 400, "lti_unknown_platform"),
    ("wrong_azp", _wrong_azp, 400, "lti_bad_audience"),
    ("many_aud_without_azp", _many_aud_no_azp, 400, "lti_bad_audience"),
    ("unknown_issuer_in_token", _unknown_issuer, 400, "lti_unknown_platform"),
    ("nonce_never_issued", _unissued_nonce, 400, "lti_bad_nonce"),
    ("unknown_kid", _unknown_kid, 400, "lti_bad_signature"),
]


@pytest.mark.parametrize("name,tamper,status,code", CASES, ids=[c[0] for c in CASES])
def test_tampered_id_token_is_refused(
    live, platform, registered, browser, name, tamper, status, code
):
    hint = platform.prepare(sub="victim", tamper=tamper)
    refused(platform.launch(browser, live, hint), status, code)
    _no_user_created()


def test_unknown_issuer_at_login(live, platform, registered, browser):
    hint = platform.prepare()
    response = platform.launch(browser, live, hint, iss="https://unknown.example", client_id="x")
    refused(response, 400, "lti_unknown_platform")
    refused(browser.get(live + "/lti/login", params={"login_hint": "x"}), 400, "lti_bad_login")


def test_unknown_and_unapproved_deployment(live, platform, registered, browser, orgs):
    refused(
        platform.launch(browser, live, platform.prepare(deployment_id="dep-unknown")),
        403,
        "lti_unknown_deployment",
    )
    registrations.add_platform(
        None,
        platform.registration(orgs.school.code, deployment_id="dep-pending", approved=False),
        system=True,
    )
    commit()
    refused(
        platform.launch(browser, live, platform.prepare(deployment_id="dep-pending")),
        403,
        "lti_deployment_not_approved",
    )
    _no_user_created()


def test_replayed_id_token_is_refused(live, platform, registered, browser):
    hint = platform.prepare(sub="stu-replay")
    login = browser.get(
        live + "/lti/login", params=platform.login_params(hint), allow_redirects=False
    )
    action, fields = platform.authorize(browser, login.headers["Location"])
    first = browser.post(action, data=fields, allow_redirects=False)
    assert first.status_code == 302, first.text[:500]
    # Same browser (state cookie still there), same id_token: pylti1p3 alone accepts this.
    refused(browser.post(action, data=fields, allow_redirects=False), 400, "lti_replay")


def test_missing_and_mismatched_state(live, platform, registered, browser):
    hint = platform.prepare(sub="stu-state")
    login = browser.get(
        live + "/lti/login", params=platform.login_params(hint), allow_redirects=False
    )
    action, fields = platform.authorize(browser, login.headers["Location"])
    refused(
        browser.post(action, data={"id_token": fields["id_token"]}, allow_redirects=False),
        400,
        "lti_missing_state",
    )
    refused(
        browser.post(action, data={**fields, "state": "state-forged"}, allow_redirects=False),
        400,
        "lti_bad_state",
    )
    # Another browser (no state cookie) posting the victim's id_token and state.
    with requests.Session() as attacker:
        refused(
            attacker.post(action, data=fields, allow_redirects=False), 400, "lti_state_mismatch"
        )
    # A second login in the same browser: its state with the first login's token.
    login2 = browser.get(
        live + "/lti/login", params=platform.login_params(hint), allow_redirects=False
    )
    _, fields2 = platform.authorize(browser, login2.headers["Location"])
    refused(
        browser.post(
            action,
            data={"id_token": fields["id_token"], "state": fields2["state"]},
            allow_redirects=False,
        ),
        400,
        "lti_bad_nonce",
    )
    _no_user_created()
    # The untouched original still works afterwards: nothing was consumed by the attacks.
    assert browser.post(action, data=fields, allow_redirects=False).status_code == 302


def test_garbage_token_and_unknown_message(live, platform, registered, browser):
    hint = platform.prepare()
    login = browser.get(
        live + "/lti/login", params=platform.login_params(hint), allow_redirects=False
    )
    action, fields = platform.authorize(browser, login.headers["Location"])
    refused(
        browser.post(action, data={**fields, "id_token": "not.a.jwt"}, allow_redirects=False),
        400,
        "lti_bad_token",
    )
    refused(
        browser.post(action, data={"state": fields["state"]}, allow_redirects=False),
        400,
        "lti_bad_token",
    )
    refused(
        platform.launch(browser, live, platform.prepare(message_type="LtiSomethingElse")),
        400,
        "lti_bad_message",
    )


def test_resource_the_district_cannot_see(live, platform, registered, browser, make_user, orgs):
    other_teacher = make_user("teacher", school=orgs.review_school)
    hidden = published_resource(
        other_teacher,
        visibility="district",
        reviewer=make_user("district_admin", district=orgs.review_district),
    )
    response = platform.launch(
        browser, live, platform.prepare(sub="stu-x", custom={"resource": hidden})
    )
    refused(response, 403, "lti_not_visible")
    refused(
        platform.launch(browser, live, platform.prepare(sub="stu-y", custom={"resource": "nope"})),
        404,
        "lti_not_found",
    )


def test_form_parser_sanity():
    assert parse_form(
        '<form method="post" action="/x"><input type="hidden" name="a" value="1"></form>'
    ) == (
        "/x",
        {"a": "1"},
    )


SEGMENTS = [
    b"",
    b"eyJhbGciOiJSUzI1NiJ9",
    b"QQ",
    b"QQ==",
    b"QQ=",
    b"QQ===",
    b"QR",  # non-canonical: its unused bits are not zero
    b"QUI",
    b"QUI=",
    b"Q",
    b"!!!!",
    b"QQ!!",
    b"Q=Q=",
    b"QUJD+/",  # standard base64, not base64url
    b"QUJD-_",
    b"QUJD\n",
    "QUJDé".encode(),
    b"QUJD\x00",
]


@pytest.mark.parametrize("segment", SEGMENTS)
def test_the_id_tokens_segments_are_checked_as_pyjwt_checks_them(segment):
    """app.lti.tool._JWS replaces PyJWT's per-byte alphabet check by ``bytes.translate``
    (issue 14, sixth pass): it accepts and refuses exactly what PyJWT does."""
    from jwt.api_jws import PyJWS
    from jwt.exceptions import DecodeError

    from app.lti.tool import _JWS

    def outcome(check):
        try:
            return check(segment, "payload")
        except DecodeError as exc:
            return ("refused", str(exc))

    assert outcome(_JWS._decode_base64url_segment) == outcome(PyJWS._decode_base64url_segment)


def test_a_signature_outside_the_base64url_alphabet_is_refused(live, platform, registered, browser):
    hint = platform.prepare(sub="victim")
    login = browser.get(
        live + "/lti/login", params=platform.login_params(hint), allow_redirects=False
    )
    action, fields = platform.authorize(browser, login.headers["Location"])
    head, body, signature = fields["id_token"].split(".")
    fields["id_token"] = f"{head}.{body}.{signature[:-4]}!!!!"
    refused(browser.post(action, data=fields, allow_redirects=False), 400, "lti_bad_signature")
    _no_user_created()

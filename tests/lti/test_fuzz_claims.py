"""Hostile id_tokens: whatever the header and claims hold, a launch ends in a 4xx page
with an ``lti_…`` code (or, when the mutation happened to be harmless, a normal launch),
never in a 5xx.  The examples listed by the hardening sweep come first, then Hypothesis
generates more: unsigned garbage (no key needed) and tokens validly signed by the
registered platform whose claims have the wrong types."""

from __future__ import annotations

import base64
import json
from urllib.parse import parse_qs, urlparse

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.lti.helpers import refused
from tests.lti.platform import AGS, CLAIM, NRPS, PreparedLaunch

FUZZ = settings(
    max_examples=40,
    deadline=None,
    # The LMS, the live server and the registration are set up once for all examples.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=10,
)


def _b64(data) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _sign_anything(platform, claims) -> str:
    """RS256 over any JSON body (PyJWT's encoder refuses wrongly typed registered claims;
    a hostile platform's signer does not)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    signing_input = f"{_b64({'alg': 'RS256', 'kid': platform.kid, 'typ': 'JWT'})}.{_b64(claims)}"
    signature = platform.private_key.sign(
        signing_input.encode(), padding.PKCS1v15(), hashes.SHA256()
    )
    return signing_input + "." + _b64(signature)


def _login(browser, live, platform, sub="fuzz") -> tuple[str, str]:
    """A real OIDC login in ``browser`` (its state cookie kept); returns (state, nonce)."""
    hint = platform.prepare(sub=sub)
    answer = browser.get(
        live + "/lti/login", params=platform.login_params(hint), allow_redirects=False
    )
    assert answer.status_code == 302, answer.text[:300]
    query = parse_qs(urlparse(answer.headers["Location"]).query)
    return query["state"][0], query["nonce"][0]


def _post(browser, live, token, state) -> requests.Response:
    return browser.post(
        live + "/lti/launch", data={"id_token": token, "state": state}, allow_redirects=False
    )


def _assert_refused_or_fine(response: requests.Response) -> None:
    assert response.status_code < 500, (response.status_code, response.text[:800])
    if response.status_code >= 400:
        assert 'data-error-code="lti_' in response.text, response.text[:800]
    else:
        assert response.status_code in (200, 302), response.status_code


# --- the examples of the sweep ----------------------------------------------------------

UNSIGNED = [
    ("header_list", [1, 2], {"iss": "x"}, "lti_bad_token"),
    ("header_string", "RS256", {"iss": "x"}, "lti_bad_token"),
    ("header_null", None, {"iss": "x"}, "lti_bad_token"),
    ("payload_list", {"alg": "RS256", "kid": "k"}, [1], "lti_bad_token"),
    ("payload_string", {"alg": "RS256", "kid": "k"}, "claims", "lti_bad_token"),
    ("payload_null", {"alg": "RS256", "kid": "k"}, None, "lti_bad_token"),
    ("aud_dict", {"alg": "RS256", "kid": "k"}, {"iss": "ISS", "aud": {"a": 1}}, "lti_bad_claim"),
    ("aud_int", {"alg": "RS256", "kid": "k"}, {"iss": "ISS", "aud": 7}, "lti_bad_claim"),
    (
        "aud_list_of_dicts",
        {"alg": "RS256", "kid": "k"},
        {"iss": "ISS", "aud": [{"a": 1}]},
        "lti_bad_claim",
    ),
    ("iss_dict", {"alg": "RS256", "kid": "k"}, {"iss": {"x": 1}, "aud": "c"}, "lti_bad_claim"),
]


@pytest.mark.parametrize("name,header,payload,code", UNSIGNED, ids=[case[0] for case in UNSIGNED])
def test_unsigned_malformed_tokens_are_400(
    live, platform, registered, browser, name, header, payload, code
):
    state, _ = _login(browser, live, platform)
    if isinstance(payload, dict) and payload.get("iss") == "ISS":
        payload = {**payload, "iss": platform.issuer}
    token = f"{_b64(header)}.{_b64(payload)}.c2ln"
    refused(_post(browser, live, token, state), 400, code)


SIGNED = [
    ("nonce_int", "nonce", 12345),
    ("roles_int", CLAIM + "roles", 3),
    ("roles_list_of_int", CLAIM + "roles", [1, 2]),
    ("context_string", CLAIM + "context", "course-1"),
    ("resource_link_string", CLAIM + "resource_link", "link-1"),
    ("ags_string", AGS, "https://lms.example/lineitems"),
    ("nrps_list", NRPS, ["https://lms.example/memberships"]),
    ("name_dict", "name", {"zh": "李雷"}),
    ("custom_list", CLAIM + "custom", ["resource"]),
    ("sub_dict", "sub", {"id": 1}),
    ("deployment_id_list", CLAIM + "deployment_id", ["dep-1"]),
    ("ags_scope_string", AGS, {"scope": "score", "lineitem": "https://lms.example/li"}),
]


def _signed(platform, nonce, claim, value, sub="fuzz") -> str:
    claims = platform.claims_for(PreparedLaunch(sub=sub), nonce)
    if claim == "nonce":
        claims["nonce"] = value
    else:
        claims[claim] = value
    return _sign_anything(platform, claims)


@pytest.mark.parametrize("name,claim,value", SIGNED, ids=[case[0] for case in SIGNED])
def test_signed_tokens_with_wrong_claim_types_are_400(
    live, platform, registered, browser, name, claim, value
):
    state, nonce = _login(browser, live, platform)
    refused(
        _post(browser, live, _signed(platform, nonce, claim, value), state), 400, "lti_bad_claim"
    )
    # The same browser's launch still works afterwards: the refusal consumed nothing.
    state, nonce = _login(browser, live, platform)
    fine = platform.sign(platform.claims_for(PreparedLaunch(sub="fuzz"), nonce))
    assert _post(browser, live, fine, state).status_code == 302


# --- generated -------------------------------------------------------------------------


@FUZZ
@given(
    header=json_values | st.fixed_dictionaries({"alg": json_values, "kid": json_values}),
    payload=json_values
    | st.fixed_dictionaries(
        {"iss": json_values, "aud": json_values},
        optional={"azp": json_values, "iat": json_values, "exp": json_values},
    ),
    signature=st.text(max_size=40),
)
def test_unsigned_garbage_is_never_a_5xx(live, platform, registered, header, payload, signature):
    with requests.Session() as browser:
        state, _ = _login(browser, live, platform)
        token = f"{_b64(header)}.{_b64(payload)}.{signature}"
        _assert_refused_or_fine(_post(browser, live, token, state))


@FUZZ
@given(token=st.text(max_size=200) | st.binary(max_size=200).map(_b64))
def test_random_strings_as_id_token_are_never_a_5xx(live, platform, registered, token):
    with requests.Session() as browser:
        state, _ = _login(browser, live, platform)
        _assert_refused_or_fine(_post(browser, live, token, state))


CLAIMS = [
    "iss",
    "aud",
    "azp",
    "sub",
    "nonce",
    "iat",
    "exp",
    "name",
    "given_name",
    "family_name",
    "email",
    CLAIM + "message_type",
    CLAIM + "version",
    CLAIM + "deployment_id",
    CLAIM + "roles",
    CLAIM + "context",
    CLAIM + "resource_link",
    CLAIM + "custom",
    AGS,
    NRPS,
    "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings",
]


@FUZZ
@given(
    changes=st.dictionaries(st.sampled_from(CLAIMS), json_values, min_size=1, max_size=3),
    deep_linking=st.booleans(),
)
def test_signed_tokens_with_generated_claims_are_never_a_5xx(
    live, platform, registered, changes, deep_linking
):
    with requests.Session() as browser:
        state, nonce = _login(browser, live, platform)
        prepared = PreparedLaunch(
            sub="fuzz",
            message_type="LtiDeepLinkingRequest" if deep_linking else "LtiResourceLinkRequest",
            roles=["http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"],
        )
        claims = platform.claims_for(prepared, nonce)
        claims.update(changes)
        response = _post(browser, live, _sign_anything(platform, claims), state)
        _assert_refused_or_fine(response)
        if response.status_code == 302 and "/lti/deep-link/" in response.headers["Location"]:
            # A harmless mutation reached the picker: it must render, not fail.
            page = browser.get(live + response.headers["Location"])
            assert page.status_code < 500, page.text[:800]

"""Attachments in multipart/mixed (SHA-2 checked) and signed statements (JWS)."""

from __future__ import annotations

import base64
import datetime
import hashlib
import json

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from tests.xapi.conftest import new_id, statement

BOUNDARY = "xapi-test-boundary"


def multipart(statements, parts, boundary=BOUNDARY, first_type="application/json"):
    out = [
        f"--{boundary}\r\nContent-Type: {first_type}\r\n\r\n".encode(),
        json.dumps(statements).encode(),
        b"\r\n",
    ]
    for content_type, content, headers in parts:
        head = f"--{boundary}\r\nContent-Type: {content_type}\r\n"
        for key, value in headers.items():
            head += f"{key}: {value}\r\n"
        out += [head.encode() + b"\r\n", content, b"\r\n"]
    out.append(f"--{boundary}--\r\n".encode())
    return b"".join(out)


def attachment_meta(
    content: bytes, usage="http://example.org/usage/notes", content_type="text/plain"
):
    return {
        "usageType": usage,
        "display": {"en-US": "notes"},
        "contentType": content_type,
        "length": len(content),
        "sha2": hashlib.sha256(content).hexdigest(),
    }


def part(content: bytes, content_type="text/plain", sha=None, encoding="binary"):
    headers = {"X-Experience-API-Hash": sha or hashlib.sha256(content).hexdigest()}
    if encoding:
        headers["Content-Transfer-Encoding"] = encoding
    return (content_type, content, headers)


def post_multipart(lrs, body, boundary=BOUNDARY):
    return lrs.post(body, content_type=f"multipart/mixed; boundary={boundary}")


def test_attachment_stored_and_returned(lrs):
    content = "笔记 notes".encode()
    data = statement(attachments=[attachment_meta(content)])
    response = post_multipart(lrs, multipart(data, [part(content)]))
    assert response.status_code == 200, response.get_data(as_text=True)
    sid = response.get_json()[0]
    got = lrs.get(statementId=sid, attachments="true")
    assert got.headers["Content-Type"].startswith("multipart/mixed; boundary=")
    assert content in got.data and hashlib.sha256(content).hexdigest().encode() in got.data
    listed = lrs.get(attachments="true")
    assert content in listed.data


def test_file_url_attachment_needs_no_part(lrs):
    meta = attachment_meta(b"x") | {"fileUrl": "https://files.example/x.txt"}
    assert lrs.post(statement(attachments=[meta])).status_code == 200


@pytest.mark.parametrize(
    "case",
    [
        "missing part",
        "hash mismatch",
        "no hash header",
        "base64 encoding",
        "first part not json",
        "extra part",
        "no boundary",
    ],
)
def test_bad_multipart_rejected(lrs, case):
    content = b"hello"
    data = statement(attachments=[attachment_meta(content)])
    parts = [part(content)]
    kwargs = {}
    if case == "missing part":
        parts = []
    elif case == "hash mismatch":
        parts = [part(content, sha=hashlib.sha256(b"other").hexdigest())]
    elif case == "no hash header":
        parts = [("text/plain", content, {"Content-Transfer-Encoding": "binary"})]
    elif case == "base64 encoding":
        parts = [part(content, encoding="base64")]
    elif case == "first part not json":
        kwargs["first_type"] = "text/plain"
    elif case == "extra part":
        parts = [part(content), part(b"surprise")]
    body = multipart(data, parts, **kwargs)
    if case == "no boundary":
        response = lrs.post(body, content_type="multipart/mixed")
    else:
        response = post_multipart(lrs, body)
    assert response.status_code == 400, response.get_data(as_text=True)
    assert lrs.get().get_json()["statements"] == []


def test_oversize_attachment_is_413(app, lrs):
    content = b"x" * 2048
    app.config["XAPI_MAX_ATTACHMENT_BYTES"] = 1024
    try:
        response = post_multipart(
            lrs, multipart(statement(attachments=[attachment_meta(content)]), [part(content)])
        )
    finally:
        app.config["XAPI_MAX_ATTACHMENT_BYTES"] = 10 * 1024 * 1024
    assert response.status_code == 413


@pytest.fixture(scope="module")
def signing_key():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "shuyuan test signer")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return key, base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


def signed(data: dict, key, cert_b64: str, alg="RS256", payload=None) -> tuple[dict, bytes]:
    token = jwt.encode(payload or data, key, algorithm=alg, headers={"x5c": [cert_b64]}).encode()
    meta = attachment_meta(
        token,
        usage="http://adlnet.gov/expapi/attachments/signature",
        content_type="application/octet-stream",
    )
    return data | {"attachments": [meta]}, token


def test_signed_statement_accepted(lrs, signing_key):
    data, token = signed(statement(id=new_id()), *signing_key)
    response = post_multipart(lrs, multipart(data, [part(token, "application/octet-stream")]))
    assert response.status_code == 200, response.get_data(as_text=True)


def test_signed_statement_payload_must_match(lrs, signing_key):
    original = statement(id=new_id())
    tampered = original | {"verb": {"id": "http://adlnet.gov/expapi/verbs/passed"}}
    data, token = signed(original, *signing_key, payload=tampered)
    response = post_multipart(lrs, multipart(data, [part(token, "application/octet-stream")]))
    assert response.status_code == 400
    assert "does not match" in response.get_json()["error"]["message"]


def test_signed_statement_bad_signature_or_alg(lrs, signing_key):
    key, cert = signing_key
    data, token = signed(statement(id=new_id()), key, cert)
    header, payload, signature = token.split(b".")
    broken = header + b"." + payload + b"." + signature[:-6] + b"AAAAAA"
    meta = attachment_meta(
        broken,
        usage="http://adlnet.gov/expapi/attachments/signature",
        content_type="application/octet-stream",
    )
    response = post_multipart(
        lrs, multipart(data | {"attachments": [meta]}, [part(broken, "application/octet-stream")])
    )
    assert response.status_code == 400
    hs = jwt.encode(statement(), "secret-key-for-hmac-test-32bytes!", algorithm="HS256").encode()
    meta = attachment_meta(
        hs,
        usage="http://adlnet.gov/expapi/attachments/signature",
        content_type="application/octet-stream",
    )
    response = post_multipart(
        lrs, multipart(statement(attachments=[meta]), [part(hs, "application/octet-stream")])
    )
    assert response.status_code == 400

"""multipart/mixed for statements with attachments: reading a request (statements
first, then one part per attachment with its SHA-2 checked) and writing a response."""

from __future__ import annotations

import hashlib
import json
import secrets

from flask import Response, current_app
from werkzeug.http import parse_options_header

from app.errors import BadRequest, PayloadTooLarge

_HASHES = {56: hashlib.sha224, 64: hashlib.sha256, 96: hashlib.sha384, 128: hashlib.sha512}


def parse(content_type: str, body: bytes, version: str) -> tuple[bytes, dict]:
    """(the statements part's bytes, {sha2: (content type, bytes)}) of a request."""
    _, options = parse_options_header(content_type)
    boundary = options.get("boundary")
    if not boundary:
        raise BadRequest(
            "multipart/mixed needs a boundary parameter.", fields={"Content-Type": ["no boundary"]}
        )
    delimiter = b"--" + boundary.encode("latin-1")
    if delimiter not in body:
        raise BadRequest(
            "The multipart body does not contain its boundary.", fields={"body": ["no boundary"]}
        )
    chunks = body.split(delimiter)
    parts = []
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            break
        if chunk.startswith(b"\r\n"):
            chunk = chunk[2:]
        elif chunk.startswith(b"\n"):
            chunk = chunk[1:]
        if chunk.endswith(b"\r\n"):
            chunk = chunk[:-2]
        elif chunk.endswith(b"\n"):
            chunk = chunk[:-1]
        separator = b"\r\n\r\n" if b"\r\n\r\n" in chunk else b"\n\n"
        head, _, content = chunk.partition(separator)
        headers = {}
        for line in head.decode("latin-1").splitlines():
            if ":" in line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        parts.append((headers, content))
    if not parts:
        raise BadRequest("The multipart body has no parts.", fields={"body": ["no parts"]})
    first_headers, first_content = parts[0]
    if parse_options_header(first_headers.get("content-type", ""))[0].lower() != "application/json":
        raise BadRequest(
            "The first part of a multipart/mixed request must be the statements "
            "as application/json.",
            fields={"part[0]": ["not application/json"]},
        )
    limit = current_app.config.get("XAPI_MAX_ATTACHMENT_BYTES", 10 * 1024 * 1024)
    attachments = {}
    for index, (headers, content) in enumerate(parts[1:], start=1):
        declared = headers.get("x-experience-api-hash")
        if not declared:
            raise BadRequest(
                f"Part {index} has no X-Experience-API-Hash header.",
                fields={f"part[{index}]": ["no X-Experience-API-Hash"]},
            )
        encoding = headers.get("content-transfer-encoding")
        if (encoding is not None and encoding.lower() != "binary") or (
            encoding is None and version.startswith("1")
        ):
            raise BadRequest(
                f"Part {index} must have Content-Transfer-Encoding: binary.",
                fields={f"part[{index}]": ["Content-Transfer-Encoding is not binary"]},
            )
        if len(content) > limit:
            raise PayloadTooLarge(f"Attachment part {index} is larger than {limit} bytes.")
        algorithm = _HASHES.get(len(declared))
        if algorithm is None or algorithm(content).hexdigest() != declared.lower():
            raise BadRequest(
                f"Part {index}: X-Experience-API-Hash does not match the SHA-2 of its content.",
                fields={f"part[{index}]": ["hash mismatch"]},
            )
        attachments[declared] = (headers.get("content-type", "application/octet-stream"), content)
    return first_content, attachments


def keys_case(attachments: dict, statements) -> dict:
    # Statements may give sha2 in another letter case than the part header.
    declared = {}
    for statement in statements if isinstance(statements, list) else []:
        # Unchecked input (validation comes later): "attachments" may be any JSON value.
        listed = statement.get("attachments") if isinstance(statement, dict) else None
        if isinstance(listed, list):
            for attachment in listed:
                if isinstance(attachment, dict) and isinstance(attachment.get("sha2"), str):
                    declared[attachment["sha2"].lower()] = attachment["sha2"]
    return {declared.get(k.lower(), k): v for k, v in attachments.items()}


def response(data, attachments, headers) -> Response:
    boundary = secrets.token_hex(16)
    out = [
        f"--{boundary}\r\nContent-Type: application/json\r\n\r\n".encode(),
        json.dumps(data, ensure_ascii=False).encode("utf-8"),
        b"\r\n",
    ]
    for attachment in attachments:
        out.append(
            f"--{boundary}\r\nContent-Type: {attachment.content_type}\r\n"
            "Content-Transfer-Encoding: binary\r\n"
            f"X-Experience-API-Hash: {attachment.sha2}\r\n\r\n".encode()
        )
        out.append(attachment.content)
        out.append(b"\r\n")
    out.append(f"--{boundary}--".encode())
    response = Response(
        b"".join(out), status=200, content_type=f"multipart/mixed; boundary={boundary}"
    )
    for key, value in headers.items():
        response.headers[key] = value
    return response

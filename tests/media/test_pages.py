"""Upload page access, the editor's link on the resource page, and player markup."""

from __future__ import annotations

import io

from tests.media.conftest import upload_file


def _pdf() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (200, 300), (255, 255, 255)).save(out, "PDF")
    return out.getvalue()


def test_upload_page_and_players(client, make_user, make_resource, token_for):
    teacher = make_user("teacher")
    colleague = make_user("teacher")
    content_id = make_resource(teacher, "document", title="讲义")
    headers = token_for(teacher)
    colleague_headers = token_for(colleague)
    assert client.get(f"/resources/{content_id}/media", headers=colleague_headers).status_code in (
        403,
        404,
    )
    page = client.get(f"/resources/{content_id}/media", headers=headers)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'id="media-upload"' in html and "application/pdf" in html and "上传文件" in html
    detail = client.get(f"/resources/{content_id}?version=latest", headers=headers).get_data(
        as_text=True
    )
    # The resource page sends the author to the editor, where the upload is (issue 16).
    assert f"/me/resources/{content_id}/edit#files" in detail and "尚未上传文件" in detail
    assert upload_file(client, headers, content_id, "讲义.pdf", _pdf()).status_code == 200
    detail = client.get(f"/resources/{content_id}?version=latest", headers=headers).get_data(
        as_text=True
    )
    assert 'class="pdf-viewer"' in detail and "vendor/pdfjs/pdf.min.mjs" in detail
    assert "js/shuyuan-player.js" in detail and 'data-csrf="' in detail
    assert client.get("/plugins/pdf/static/vendor/pdfjs/pdf.worker.min.mjs").status_code == 200
    assert client.get("/static/js/shuyuan-player.js").status_code == 200

"""Media business logic, one module per sub-domain.

- :mod:`~app.media.services.permissions` — who may upload, see, resume (catalog rules);
- :mod:`~app.media.services.quota` — district quotas and usage;
- :mod:`~app.media.services.uploads` — start, part URLs, resume, complete, abort;
- :mod:`~app.media.services.verification` — size, sniffed type, SHA-256, H5P unpacking,
  content-addressed storage (job ``finalize_upload``);
- :mod:`~app.media.services.attachments` — files of resource version rows;
- :mod:`~app.media.services.derivatives` — thumbnails, posters, durations (job);
- :mod:`~app.media.services.delivery` — short-lived URLs and the package sandbox;
- :mod:`~app.media.services.progress` — player events → ``learning_event``, and a
  learner's own progress (:func:`learner_progress`, :func:`course_progress`,
  :func:`recent_resources`: typed answers, for the catalog's cards);
- :mod:`~app.media.services.covers` — pictures on catalog cards (uploaded covers);
- :mod:`~app.media.services.gc` — abandoned uploads, unreferenced objects.

Every function taking ``user`` checks what that user may do and only flushes; the
request (or the CLI command, or the job runner) commits.  The names below are the
feature's service surface, used by its views, API, CLI and :mod:`app.hooks`.

Upload flow (same for both backends)::

    start_upload ─► browser PUTs bytes to presigned / signed URLs (parts 8–64 MB)
                 ─► complete_upload (parts checked, multipart completed; state verifying)
                 ─► finalize_upload: size, sniffed type, sha256 read back → kept at its
                    upload key and recorded by sha256 (or an object with that sha256
                    reused), attached to the resource's draft → make_derivatives
"""

from app.media.services.attachments import (
    attach,
    attachments_of,
    copy_attachments,
    on_resource_version_created,
    remove_attachment,
)
from app.media.services.common import accepted_types, clean_filename, jobs_due
from app.media.services.covers import (
    COVER_MAX_BYTES,
    picture_delivery,
    remove_cover,
    upload_cover,
)
from app.media.services.delivery import (
    Delivery,
    PackageFile,
    content_origin,
    delivery_url,
    is_content_host,
    link_payload,
    media_context,
    package_file,
    package_headers,
)
from app.media.services.derivatives import make_derivatives
from app.media.services.gc import GcReport, collect_garbage, delete_collected_bytes
from app.media.services.permissions import file_read
from app.media.services.progress import (
    VERBS,
    CourseProgress,
    LearnerProgress,
    course_progress,
    learner_progress,
    progress_of,
    recent_resources,
    record_progress,
)
from app.media.services.quota import (
    district_quota,
    district_usage,
    set_district_quota,
    usage_by_district,
)
from app.media.services.uploads import (
    abort_upload,
    complete_upload,
    done_parts,
    part_size_for,
    part_urls,
    staging_open,
    start_upload,
    upload_status,
    upload_urls,
)
from app.media.services.verification import finalize_upload, request_verification

__all__ = [
    "COVER_MAX_BYTES",
    "CourseProgress",
    "LearnerProgress",
    "course_progress",
    "learner_progress",
    "picture_delivery",
    "recent_resources",
    "remove_cover",
    "upload_cover",
    "Delivery",
    "GcReport",
    "PackageFile",
    "VERBS",
    "abort_upload",
    "accepted_types",
    "attach",
    "attachments_of",
    "clean_filename",
    "collect_garbage",
    "complete_upload",
    "content_origin",
    "copy_attachments",
    "delete_collected_bytes",
    "delivery_url",
    "file_read",
    "district_quota",
    "district_usage",
    "done_parts",
    "finalize_upload",
    "is_content_host",
    "jobs_due",
    "link_payload",
    "make_derivatives",
    "media_context",
    "on_resource_version_created",
    "package_file",
    "package_headers",
    "part_size_for",
    "part_urls",
    "progress_of",
    "record_progress",
    "remove_attachment",
    "request_verification",
    "set_district_quota",
    "staging_open",
    "start_upload",
    "upload_status",
    "upload_urls",
    "usage_by_district",
]

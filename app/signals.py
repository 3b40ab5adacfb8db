"""Cross-feature events.

Publishing code sends these; search, xAPI, subscriptions and plugins listen.  The sender
never imports its listeners.  Signals marked *after commit* are queued with
:func:`app.common.events.send_after_commit` and delivered only once the database
transaction that made the change has committed (and dropped if it rolls back), so a
listener never sees data that is not stored.

Every signal's sender is the Flask app; keyword arguments are listed with each signal.
"""

from blinker import Namespace

from app.common.events import send_after_commit

_signals = Namespace()

course_published = _signals.signal("course-published")
"""After commit. A course version became the published one.
kwargs: ``course`` (the published :class:`app.catalog.models.Course` row), ``user``."""

course_archived = _signals.signal("course-archived")
"""After commit. kwargs: ``course`` (the archived row), ``user``."""

course_deleted = _signals.signal("course-deleted")
"""After commit. A course was deleted. kwargs: ``content_id``, ``user``."""

course_submitted = _signals.signal("course-submitted")
"""After commit. A course draft waits for district review. kwargs: ``course``, ``user``."""

resource_published = _signals.signal("resource-published")
"""After commit. kwargs: ``resource`` (the published row), ``user``."""

resource_archived = _signals.signal("resource-archived")
"""After commit. kwargs: ``resource``, ``user``."""

resource_deleted = _signals.signal("resource-deleted")
"""After commit. kwargs: ``content_id``, ``user``."""

resource_submitted = _signals.signal("resource-submitted")
"""After commit. kwargs: ``resource``, ``user``."""

student_enrolled = _signals.signal("student-enrolled")
"""After commit. kwargs: ``enrolment`` (status ``enrolled`` or ``waitlisted``), ``user``."""

student_unenrolled = _signals.signal("student-unenrolled")
"""After commit. kwargs: ``enrolment``, ``user``; ``promoted`` is the enrolment moved up
from the waiting list, or None."""

user_logged_in = _signals.signal("user-logged-in")
"""Sent on a successful local login. kwargs: ``user``, ``method`` ("password" or "token")."""

learning_event = _signals.signal("learning-event")
"""After commit. A player or launch reported progress. kwargs: ``user``, ``verb``
(experienced, progressed, completed, ...), ``resource`` or ``course``, ``result`` (dict or
None), ``context`` (dict, e.g. class, lesson, platform).  Sent with
:func:`send_learning_event`."""


def send_learning_event(
    user,
    verb: str,
    *,
    resource=None,
    course=None,
    result: dict | None = None,
    context: dict | None = None,
) -> None:
    """Report a learning action (from a player or launch): queue :data:`learning_event`
    for after the commit with every keyword its listeners read (``context`` an empty dict
    when not given).  Plugins call it as ``app.hooks.emit_learning_event``."""
    send_after_commit(
        learning_event,
        user=user,
        verb=verb,
        resource=resource,
        course=course,
        result=result,
        context={} if context is None else context,
    )


alignment_changed = _signals.signal("alignment-changed")
"""After commit. Curriculum alignments of a resource were added or removed, or the
curriculum nodes it is aligned to changed (re-import). kwargs: ``resource_content_id``
(str), ``user`` (or None for imports and the demo loader). Read the current alignments
with :func:`app.curriculum.services.alignments_for_resource`."""

resource_version_created = _signals.signal("resource-version-created")
"""Sent INSIDE the transaction (not after commit), from ``catalog.services._copy_row``, when
a new draft version of a resource is copied from the previous one.  kwargs: ``resource``
(the new draft row, already added to the session; flush to get its id) and ``previous``
(the row it was copied from).  Receivers may add rows with ``db.session`` (e.g. media
attachments copied to the new version) but must neither commit nor roll back."""

release_published = _signals.signal("release-published")
"""After commit. A shared catalog was released (app/sharing). kwargs: ``release`` (the
:class:`app.sharing.models.Release` row), ``user`` (or None for the CLI/demo)."""

subscription_accepted = _signals.signal("subscription-accepted")
"""After commit. A subscriber district accepted items of a release (app/sharing); its
schools now see them.  kwargs: ``subscription`` (the
:class:`app.sharing.models.Subscription` row), ``release_number`` (int), ``content_ids``
(list of str: the items accepted, added or removed), ``user`` (or None for auto-accept)."""

item_withdrawn = _signals.signal("item-withdrawn")
"""After commit. A publisher withdrew an item from a shared catalog; every subscriber
lost it at once (app/sharing).  kwargs: ``catalog`` (the
:class:`app.sharing.models.SharedCatalog` row), ``content_id`` (str), ``user``."""

personal_data_export = _signals.signal("personal-data-export")
"""Sent synchronously by ``flask portraits export --student`` (PIPL-style access request).
kwargs: ``user``.  A receiver returns a JSON-serialisable dict of what its feature or plugin
stores about the user (e.g. ``{"exercise_attempts": [...]}``); the sections are merged into
the export."""

personal_data_erase = _signals.signal("personal-data-erase")
"""Sent synchronously, INSIDE the transaction, by ``flask portraits forget --student``.
kwargs: ``user``.  A receiver deletes what its feature or plugin stores about the user's
learning (with ``db.session``, never committing) and returns the number of rows deleted."""

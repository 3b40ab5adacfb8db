"""LTI 1.3 / LTI Advantage tool (on pylti1p3): registrations, keys, launch, deep linking,
grades (AGS) and rosters (NRPS).  See docs/lti.md.

Layout: ``claims`` (typed id_token), ``tool`` (pylti1p3 glue), ``store`` (shared launch
state), ``registry_cache`` (platform and deployment rows cached on Redis; invalidated by
``origins``), ``services/`` (one module per sub-domain, see its docstring), ``views``, ``api``,
``cli``, ``receivers``, ``jobs`` (jobs enqueued after the request's commit).

Seams with other features — typed public functions only:

- catalog: ``can_view``, ``visible_to_organisation`` (content a deployment's school or
  district may open), ``get_content``, ``list_published``;
- curriculum: ``get_or_create_class``, ``add_class_member``, ``get_calendar``,
  ``list_calendars``, ``lessons_for_week``, ``resources_for_week``;
- search: ``search`` (``SearchResult`` of ``SearchHit``);
- accounts: ``create_user``, ``assign_role``, ``get_user_by_email``/``_public_id``;
- signals: sends ``learning_event`` (verb ``launched``) after commit; listens to
  ``learning_event`` for scores (``receivers.on_learning_event``).

Public to other features: ``app.lti.origins.registered_platform_origins() -> tuple[str, ...]``
(the LMS origins allowed to frame LTI pages, cached per request).  Other features call
nothing else here.
"""

from flask import Flask, request, session


def init_app(app: Flask) -> None:
    """Blueprints, API, CLI, the learning_event receiver and the cross-site cookie fix."""
    from app import signals
    from app.extensions import api as rest_api
    from app.lti import (
        api,
        cli,
        models,  # noqa: F401  (tables)
        origins,
        receivers,
        views,
    )

    app.register_blueprint(views.bp)
    rest_api.register_blueprint(api.blp)
    app.cli.add_command(cli.lti_cli)
    origins.install()
    signals.learning_event.connect(receivers.on_learning_event, sender=app, weak=False)
    from app import plugins

    plugins.registry(app).slots.setdefault("admin_links", []).append(views.admin_card)

    @app.after_request
    def _lti_cookies(response):
        # Inside the LMS frame every cookie of the launch flow (state, session) must be
        # SameSite=None; Secure, which browsers accept only over HTTPS.
        if request.is_secure and (request.path.startswith("/lti/") or session.get("lti")):
            cookies = response.headers.getlist("Set-Cookie")
            if cookies:
                response.headers.remove("Set-Cookie")
                for cookie in cookies:
                    response.headers.add("Set-Cookie", _cross_site(cookie))
        return response


def _cross_site(cookie: str) -> str:
    parts = [
        p
        for p in cookie.split("; ")
        if not p.lower().startswith("samesite=") and p.lower() != "secure"
    ]
    return "; ".join(parts + ["Secure", "SameSite=None"])

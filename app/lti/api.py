"""LTI administration API under /api/v1/lti (platform and district admins).  The
framework commits each request; nothing here does."""

from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint

from app.accounts.auth import actor
from app.errors import Unauthorized, require_json_body
from app.lti import schemas
from app.lti.services import ags, dynamic, nrps, registrations

blp = Blueprint(
    "lti_api",
    __name__,
    url_prefix="/api/v1/lti",
    description="LTI 1.3 registrations, grades, rosters",
)
blp.before_request(require_json_body)


def _require_actor():
    user = actor()
    if user is None:
        raise Unauthorized("Log in or send a bearer token.")
    return user


def _base_url() -> str:
    from flask import current_app

    return (current_app.config.get("LTI_BASE_URL") or request.host_url).rstrip("/")


@blp.route("/platforms")
class Platforms(MethodView):
    @blp.response(200, schemas.PlatformSchema(many=True))
    def get(self):
        """Registered platforms, each with the deployments the caller manages."""
        return registrations.list_platforms(_require_actor())

    @blp.arguments(schemas.PlatformCreateSchema)
    @blp.response(201, schemas.PlatformSchema)
    def post(self, data):
        """Register a platform and a deployment (platform admins)."""
        deployment = registrations.add_platform(_require_actor(), data)
        return deployment.platform


@blp.route("/deployments/<int:deployment_pk>")
class Deployment(MethodView):
    @blp.arguments(schemas.DeploymentApprovalSchema)
    @blp.response(200, schemas.DeploymentSchema)
    def patch(self, data, deployment_pk):
        """Approve or suspend a deployment (and assign its school)."""
        return registrations.set_deployment_approval(
            _require_actor(), deployment_pk, data["approved"], school_code=data.get("school")
        )


@blp.route("/registration-links")
class RegistrationLinks(MethodView):
    @blp.response(200, schemas.RegistrationLinkSchema(many=True))
    def get(self):
        """One-time dynamic registration links of the caller's districts (no secrets)."""
        return dynamic.list_registration_links(_require_actor())

    @blp.arguments(schemas.RegistrationLinkCreateSchema)
    @blp.response(201, schemas.NewRegistrationLinkSchema)
    def post(self, data):
        """Make a one-time registration link for a district or school; its URL is in
        this answer only."""
        user = _require_actor()
        district_id = school_id = None
        if data.get("school"):
            school_id = registrations.resolve_org(school_code=data["school"])[0].id
        elif data.get("district"):
            district_id = registrations.resolve_org(district_code=data["district"])[1].id
        made = dynamic.create_registration_link(
            user,
            district_id=district_id,
            school_id=school_id,
            hours=data["hours"],
            note=data["note"],
        )
        return {"link": made.link, "url": made.url(_base_url())}


@blp.route("/registration-links/<int:link_id>", methods=["DELETE"])
@blp.response(204)
def revoke_registration_link(link_id):
    """Revoke an unused registration link."""
    dynamic.revoke_registration_link(_require_actor(), link_id)


@blp.route("/grades")
@blp.arguments(schemas.GradeArgsSchema, location="query")
@blp.response(200, schemas.GradePageSchema)
def grades(args):
    """The grade passback log (scores queued, sent and failed)."""
    return ags.grade_log(_require_actor(), args.get("status"), args["page"], args["per_page"])


@blp.route("/contexts/<int:context_pk>/roster-sync", methods=["POST"])
@blp.response(200, schemas.RosterSyncSchema)
def roster_sync(context_pk):
    """Read the LMS roster of a course now (NRPS) into its class."""
    return nrps.request_roster_sync(_require_actor(), context_pk)

"""LTI administration API under /api/v1/lti (platform and district admins)."""

from flask.views import MethodView
from flask_smorest import Blueprint

from app.accounts.auth import actor
from app.common.events import commit
from app.errors import Unauthorized, require_json_body
from app.lti import schemas, services

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


@blp.route("/platforms")
class Platforms(MethodView):
    @blp.response(200, schemas.PlatformSchema(many=True))
    def get(self):
        """Registered platforms with their deployments."""
        return services.list_platforms(_require_actor())

    @blp.arguments(schemas.PlatformCreateSchema)
    @blp.response(201, schemas.PlatformSchema)
    def post(self, data):
        """Register a platform and a deployment (platform admins)."""
        deployment = services.add_platform(_require_actor(), data)
        commit()
        return deployment.platform


@blp.route("/deployments/<int:deployment_pk>")
class Deployment(MethodView):
    @blp.arguments(schemas.DeploymentApprovalSchema)
    @blp.response(200, schemas.DeploymentSchema)
    def patch(self, data, deployment_pk):
        """Approve or suspend a deployment (and assign its school)."""
        deployment = services.set_deployment_approval(
            _require_actor(), deployment_pk, data["approved"], school_code=data.get("school")
        )
        commit()
        return deployment


@blp.route("/grades")
@blp.arguments(schemas.GradeArgsSchema, location="query")
@blp.response(200, schemas.GradePageSchema)
def grades(args):
    """The grade passback log (scores queued, sent and failed)."""
    return services.grade_log(_require_actor(), args.get("status"), args["page"], args["per_page"])


@blp.route("/contexts/<int:context_pk>/roster-sync", methods=["POST"])
@blp.response(200, schemas.RosterSyncSchema)
def roster_sync(context_pk):
    """Read the LMS roster of a course now (NRPS) into its class."""
    result = services.request_roster_sync(_require_actor(), context_pk)
    commit()
    return result

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint

from app import signals
from app.accounts import schemas, services
from app.accounts.auth import actor, bearer_request, is_principal_route, principal
from app.common.events import send_after_commit
from app.errors import Unauthorized, require_json_body

blp = Blueprint(
    "accounts_api", __name__, url_prefix="/api/v1", description="Accounts, tokens and organisations"
)
blp.before_request(require_json_body)


@blp.before_app_request
def _check_bearer_token():
    """Any request of the site that sends a bearer token has it checked up front, so a
    bad token is a 401 even on endpoints that never ask who is calling."""
    if not bearer_request():
        return
    if is_principal_route():
        # Its light principal (one Core statement or a cache hit), not the ORM user it
        # would never read.
        principal()
    else:
        actor()


def _require_actor():
    user = actor()
    if user is None:
        raise Unauthorized("Log in or send a bearer token.")
    return user


@blp.route("/auth/tokens")
class Tokens(MethodView):
    @blp.arguments(schemas.TokenCreateSchema)
    @blp.response(201, schemas.TokenIssuedSchema)
    def post(self, data):
        """Exchange email and password for a bearer token (shown once)."""
        user = services.authenticate(data["email"], data["password"])
        token, raw = services.issue_token(
            user, data["name"], current_app.config.get("API_TOKEN_TTL_DAYS")
        )
        send_after_commit(signals.user_logged_in, user=user, method="token")
        token.raw = raw
        return token

    @blp.response(200, schemas.TokenSchema(many=True))
    def get(self):
        """List my tokens (without their secret)."""
        return services.list_tokens(_require_actor())


@blp.route("/auth/tokens/<int(max=2147483647):token_id>")
class TokenById(MethodView):
    @blp.response(204)
    def delete(self, token_id):
        """Revoke one of my tokens."""
        services.revoke_token(_require_actor(), token_id)


@blp.route("/me")
@blp.response(200, schemas.UserSchema)
def me():
    """The authenticated user, with her roles."""
    return _require_actor()


@blp.route("/districts")
@blp.response(200, schemas.DistrictSchema(many=True))
def districts():
    """All districts of the region."""
    return services.list_districts()


@blp.route("/districts/<int(max=2147483647):district_id>")
class DistrictById(MethodView):
    @blp.arguments(schemas.DistrictUpdateSchema)
    @blp.response(200, schemas.DistrictSchema)
    def patch(self, data, district_id):
        """Turn the district's review of publications on or off (district admins)."""
        return services.set_district_review(_require_actor(), district_id, data["requires_review"])


@blp.route("/schools")
@blp.arguments(schemas.SchoolQuerySchema, location="query")
@blp.response(200, schemas.SchoolSchema(many=True))
def schools(args):
    """Schools, optionally of one district."""
    return services.list_schools(args.get("district"))

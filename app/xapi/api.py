"""``/api/v1/xapi/clients``: district administrators manage their LRS credentials."""

from flask.views import MethodView
from flask_smorest import Blueprint

from app.accounts.auth import actor
from app.xapi import schemas, services

blp = Blueprint("xapi_api", __name__, url_prefix="/api/v1/xapi", description="xAPI LRS clients")


@blp.route("/clients")
class Clients(MethodView):
    @blp.response(200, schemas.ClientOutSchema(many=True))
    def get(self):
        """LRS clients of the districts I administer (never their secrets)."""
        return services.list_clients(actor())

    @blp.arguments(schemas.ClientInSchema)
    @blp.response(201, schemas.ClientCreatedSchema)
    def post(self, data):
        """Create LRS credentials; the secret is in this response only."""
        client, secret = services.create_client_as(
            actor(), data["district_id"], data["name"], data["scopes"], data.get("school_id")
        )
        client.secret = secret
        return client


@blp.route("/clients/<int(max=2147483647):client_id>")
class ClientById(MethodView):
    @blp.response(204)
    def delete(self, client_id):
        """Revoke LRS credentials."""
        services.revoke_client_as(actor(), client_id)

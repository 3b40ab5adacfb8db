"""Unbound extension objects; ``create_app`` binds them to an application.

The rate limiter is the exception: it is built per application in
:mod:`app.common.ratelimit`, as Flask-Limiter keeps its switch and counters on the object.
"""

from flask_babel import Babel
from flask_caching import Cache
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_smorest import Api
from flask_smorest.spec.plugins import integerconverter2paramschema
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import MetaData

from app.common.error_schemas import ErrorSchema
from app.common.routing import BoundedIntegerConverter

# Deterministic constraint names so Alembic can drop and alter them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class ShuyuanApi(Api):
    """flask-smorest documenting the errors the API really sends: the ``{"error": {...}}``
    envelope of app/errors.py, not flask-smorest's own ``{"code", "status", ...}``."""

    ERROR_SCHEMA = ErrorSchema


db = SQLAlchemy(metadata=MetaData(naming_convention=NAMING_CONVENTION))
migrate = Migrate()
login_manager = LoginManager()
babel = Babel()
csrf = CSRFProtect()
# Flask-Caching; use it through app/common/cache.py (generations, Redis outages).
cache = Cache()
api = ShuyuanApi()
# Path ids are documented as the bounded integers they are (app/common/routing.py).
api.register_converter(BoundedIntegerConverter, integerconverter2paramschema)

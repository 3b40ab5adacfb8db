from app import create_app
from app.config import StartupError

try:
    app = create_app()
except StartupError as exc:
    # One clear line for the operator (gunicorn, flask CLI), not a traceback.
    raise SystemExit(f"Shuyuan cannot start: {exc}") from None

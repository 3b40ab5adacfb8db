from app import create_app


def test_config_override_and_healthz(app, client):
    assert app.config["TESTING"] is True
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json["database"] == "ok"
    assert response.json["backend"] in ("sqlite", "postgresql")


def test_secret_key_generated_into_instance_and_reused(tmp_path, monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    first = create_app({"INSTANCE_PATH": str(tmp_path), "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    second = create_app({"INSTANCE_PATH": str(tmp_path), "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    assert first.config["SECRET_KEY"] == second.config["SECRET_KEY"]
    assert len(first.config["SECRET_KEY"]) >= 40
    assert (tmp_path / "secret_key").read_text().strip() == first.config["SECRET_KEY"]


def test_unreachable_database_reports_503(tmp_path):
    broken = create_app({"INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "x" * 40,
                         "SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://nobody@127.0.0.1:1/none"})
    response = broken.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.json["database"].startswith("unreachable")

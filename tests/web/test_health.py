"""`GET /healthz`: 200 with the schema revision while the database answers, 503 while it does not."""
from __future__ import annotations

from postbode import store
from postbode.web import create_app

from fixtures.postgres import wait_until


def test_healthz_answers_200_with_the_schema_revision(web_settings):
    client = create_app(web_settings, {"TESTING": True}).test_client()
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok", "schema": store.head()}
    assert response.headers["Cache-Control"] == "no-store"


def test_healthz_is_503_while_postgresql_is_stopped_and_200_when_it_is_back(
        web_settings, own_postgres_server):
    server = own_postgres_server
    url = server.url(server.new_database())
    client = create_app(web_settings.with_overrides(database=url), {"TESTING": True}).test_client()
    assert client.get("/healthz").status_code == 200
    server.stop()
    down = client.get("/healthz")
    assert down.status_code == 503
    assert down.json == {"status": "unavailable"}
    assert url not in down.get_data(as_text=True)
    server.start()
    wait_until(lambda: client.get("/healthz").status_code == 200, 60, "/healthz to answer 200")
    assert client.get("/healthz").json["schema"] == store.head()


def test_a_read_only_app_has_healthz_too(web_settings):
    store.connect(web_settings).close()
    client = create_app(web_settings, {"TESTING": True, "READ_ONLY": True}).test_client()
    assert client.get("/healthz").status_code == 200

"""Profile the sync of a remote release with pyinstrument, both instances in ONE process.

The subscriber's ``federation.sync`` runs in the main thread and its HTTP requests are
handed straight to the publisher's WSGI app (a ``requests`` adapter around Flask's test
client), so one profile shows both sides: feed pages built and signed by the publisher,
fetched, verified, checked and stored by the subscriber.  No sockets, no gunicorn: what is
left is the application's own work.

    PYTHONPATH=. .venv/bin/python bench/sharing_profile.py --items 10000 \\
        --html /tmp/sharing-sync-profile.html
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import requests  # noqa: E402
import urllib3  # noqa: E402

from app import create_app  # noqa: E402
from app.extensions import db  # noqa: E402

A, B = "http://publisher.bench", "http://subscriber.bench"


class WSGIAdapter(requests.adapters.BaseAdapter):
    """Sends a prepared request to a Flask app in this process."""

    def __init__(self, app):
        super().__init__()
        self.client = app.test_client()

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        url = urlsplit(request.url)
        response = self.client.open(
            url.path + (f"?{url.query}" if url.query else ""),
            method=request.method,
            headers=dict(request.headers),
            data=request.body or b"",
            base_url=f"{url.scheme}://{url.netloc}",
        )
        raw = urllib3.HTTPResponse(
            body=io.BytesIO(response.get_data()),
            headers=dict(response.headers),
            status=response.status_code,
            preload_content=False,
            decode_content=False,
        )
        return requests.adapters.HTTPAdapter().build_response(request, raw)

    def close(self):
        """Nothing to release: the test client holds no connection."""


def build(folder: str, n: int):
    from app.accounts import services as accounts
    from app.sharing.models import RemoteSubscriber, Subscription
    from bench.sharing import seed_publisher, synthetic_manifest

    apps = {}
    for name, own, peer in (("a", A, B), ("b", B, A)):
        apps[name] = create_app(
            {
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder}/{name}.db",
                "SECRET_KEY": "bench",
                "INSTANCE_PATH": f"{folder}/{name}",
                "PLUGINS": None,
                "SHARING_ORIGIN": own,
                "SHARING_PEERS": [peer],
                "JOBS_EAGER": True,
                "RATELIMIT_ENABLED": False,
            }
        )
        Path(f"{folder}/{name}").mkdir(exist_ok=True)
        with apps[name].app_context():
            db.create_all()
    manifest = synthetic_manifest(n)
    with apps["a"].app_context():
        catalog = seed_publisher(manifest, notes="")
        db.session.add(
            RemoteSubscriber(
                catalog_id=catalog.id,
                origin=B,
                request_id="bench-request",
                district_name="江汉区",
                status="active",
            )
        )
        uid = catalog.uid
        db.session.commit()
    with apps["b"].app_context():
        region = accounts.ensure_region("wh", "武汉", "Wuhan")
        district = accounts.ensure_district(region, "jh", "江汉区", "Jianghan")
        sub = Subscription(
            subscriber_district_id=district.id,
            remote_origin=A,
            remote_catalog_uid=uid,
            status="active",
            remote_request_id="bench-request",
        )
        db.session.add(sub)
        db.session.commit()
        sub_id = sub.id
    adapters = {
        "publisher.bench": WSGIAdapter(apps["a"]),
        "subscriber.bench": WSGIAdapter(apps["b"]),
    }
    requests.Session.get_adapter = lambda self, url: adapters[urlsplit(url).netloc]
    return apps, sub_id


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--html", help="also write pyinstrument's HTML report here")
    args = parser.parse_args()
    from pyinstrument import Profiler

    from app.sharing.models import Subscription
    from app.sharing.services import federation

    with tempfile.TemporaryDirectory() as folder:
        apps, sub_id = build(folder, args.items)
        with apps["b"].app_context():
            # Warm-up outside the profile: keys made and exchanged, the manifest decoded.
            federation.keys.ensure_key()
            with apps["a"].app_context():
                federation.keys.ensure_key()
            profiler = Profiler(interval=0.002)
            start = time.perf_counter()
            profiler.start()
            result = federation.sync(db.session.get(Subscription, sub_id))
            db.session.commit()
            profiler.stop()
            elapsed = time.perf_counter() - start
        print(f"in-process sync of {args.items} items: {result} in {elapsed:.2f} s")
        print(profiler.output_text(unicode=True, color=False, show_all=False))
        if args.html:
            Path(args.html).write_text(profiler.output_html())
        for application in apps.values():
            with application.app_context():
                db.session.remove()
                db.engine.dispose()


if __name__ == "__main__":
    main()

"""Several processes writing one index (gunicorn workers + a job worker): one writer at a
time through Whoosh's lock, readers never blocked, nothing lost."""

from __future__ import annotations

import multiprocessing

from app.search.backend import BackendQuery, TermGroup
from app.search.whoosh_backend import WhooshBackend


def _doc(worker: int, n: int) -> dict:
    return {
        "id": f"resource:{worker}-{n}",
        "type": "resource",
        "content_id": f"{worker}-{n}",
        "kind": "video",
        "subject": "music",
        "grade": ["g7"],
        "language": "zh",
        "licence": "CC-BY-4.0",
        "district": "1",
        "school": "1",
        "visibility": "region",
        "author": "a",
        "published": n,
        "usage": 0,
        "title": f"京剧 第{n}课",
        "summary": "",
        "body": "",
        "tags": [],
        "terms": [],
        "url": "",
        "fingerprint": "x",
    }


def _writer(folder: str, worker: int, count: int, errors) -> None:
    backend = WhooshBackend(folder, write_timeout=300)
    try:
        for n in range(count):
            backend.upsert([_doc(worker, n)])
    except Exception as exc:  # reported to the parent
        errors.put(f"{worker}: {exc!r}")


def test_concurrent_writers_and_reader(tmp_path):
    folder = str(tmp_path / "index")
    backend = WhooshBackend(folder)
    backend.rebuild([])
    context = multiprocessing.get_context("fork")
    errors = context.Queue()
    workers = [context.Process(target=_writer, args=(folder, w, 8, errors)) for w in range(3)]
    for process in workers:
        process.start()
    query = BackendQuery(groups=[TermGroup("jingju", [("py", "jingju", 1.0)])], facets=("grade",))
    seen = []
    while any(p.is_alive() for p in workers):
        seen.append(backend.search(query).total)  # reading while others write
    for process in workers:
        process.join(300)
        assert process.exitcode == 0
    assert errors.empty(), errors.get()
    final = backend.search(query)
    assert final.total == 24 and final.facets["grade"] == {"g7": 24}
    assert seen == sorted(seen)  # readers only ever see committed states, growing

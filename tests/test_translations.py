"""Feature catalogues are merged into one at start; a string translated differently in
two catalogues would show whichever loaded last, so they must agree."""

from pathlib import Path

from babel.messages.pofile import read_po

from app.config import PROJECT_ROOT


def _catalogues():
    patterns = ["app/translations", "app/*/translations", "plugins/shuyuan_plugins/*/translations"]
    for pattern in patterns:
        for folder in sorted(PROJECT_ROOT.glob(pattern)):
            po = folder / "zh_CN" / "LC_MESSAGES" / "messages.po"
            if po.exists():
                yield po


def test_every_feature_with_pages_has_a_chinese_catalogue():
    names = {
        po.relative_to(PROJECT_ROOT).parts[1]
        for po in _catalogues()
        if po.relative_to(PROJECT_ROOT).parts[0] == "app"
    }
    for feature in ("translations", "curriculum", "media", "search", "lti"):
        assert feature in names


def test_shared_strings_translate_the_same_everywhere():
    seen: dict[str, tuple[str, Path]] = {}
    conflicts = []
    for po in _catalogues():
        with po.open("rb") as handle:
            catalogue = read_po(handle)
        for message in catalogue:
            if not message.id or not message.string or isinstance(message.id, tuple):
                continue
            previous = seen.get(message.id)
            if previous and previous[0] != message.string:
                conflicts.append(
                    f"{message.id!r}: {previous[0]!r} ({previous[1]}) vs {message.string!r} ({po})"
                )
            seen.setdefault(message.id, (message.string, po))
    assert not conflicts, "\n".join(conflicts)

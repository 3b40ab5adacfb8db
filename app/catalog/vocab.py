"""Controlled vocabularies of the catalog, with Chinese and English labels.

Codes are stored; labels are shown in the reader's language.  Search, curriculum and
the API all use these codes.
"""

from __future__ import annotations

RESOURCE_KINDS = {
    "video": ("视频", "Video"),
    "audio": ("音频", "Audio"),
    "document": ("文档", "Document"),
    "image": ("图片", "Image"),
    "link": ("网页链接", "Web link"),
    "interactive": ("互动课件", "Interactive package"),
    "exercise": ("练习", "Exercise"),
}

COURSE_KINDS = {
    "extended": ("拓展课程", "Extended course"),
    "curriculum": ("全学科课程", "Curriculum course"),
}

CATEGORIES = {
    "opera": ("戏曲", "Chinese opera"),
    "tea": ("茶艺", "Tea art"),
    "astronomy": ("天文", "Astronomy"),
    "calligraphy": ("书法", "Calligraphy"),
    "go": ("围棋", "Go (weiqi)"),
    "papercut": ("剪纸", "Paper cutting"),
    "music": ("音乐", "Music"),
    "painting": ("绘画", "Painting"),
    "sports": ("体育", "Sports"),
    "science": ("科技", "Science and technology"),
    "crafts": ("手工", "Crafts"),
    "reading": ("阅读", "Reading"),
    "labour": ("劳动教育", "Labour education"),
    "other": ("其他", "Other"),
}

SUBJECTS = {
    "chinese": ("语文", "Chinese"),
    "math": ("数学", "Mathematics"),
    "english": ("英语", "English"),
    "physics": ("物理", "Physics"),
    "chemistry": ("化学", "Chemistry"),
    "biology": ("生物", "Biology"),
    "history": ("历史", "History"),
    "geography": ("地理", "Geography"),
    "politics": ("道德与法治", "Morality and law"),
    "science": ("科学", "Science"),
    "music": ("音乐", "Music"),
    "art": ("美术", "Art"),
    "pe": ("体育与健康", "PE and health"),
    "it": ("信息科技", "Information technology"),
}

GRADES = {
    "g1": ("一年级", "Grade 1"),
    "g2": ("二年级", "Grade 2"),
    "g3": ("三年级", "Grade 3"),
    "g4": ("四年级", "Grade 4"),
    "g5": ("五年级", "Grade 5"),
    "g6": ("六年级", "Grade 6"),
    "g7": ("七年级", "Grade 7"),
    "g8": ("八年级", "Grade 8"),
    "g9": ("九年级", "Grade 9"),
    "g10": ("高一", "Grade 10"),
    "g11": ("高二", "Grade 11"),
    "g12": ("高三", "Grade 12"),
}

EDITIONS = {
    "pep": ("人教版", "People's Education Press"),
    "bnu": ("北师大版", "Beijing Normal University Press"),
    "jiangsu": ("苏教版", "Jiangsu Education Press"),
    "tongbian": ("统编版", "National unified edition"),
    "hebei": ("冀教版", "Hebei Education Press"),
    "qingdao": ("青岛版", "Qingdao Press"),
    "shanghai": ("沪教版", "Shanghai Education Press"),
}

LICENCES = {
    "CC-BY-4.0": ("署名 4.0", "CC BY 4.0"),
    "CC-BY-SA-4.0": ("署名-相同方式共享 4.0", "CC BY-SA 4.0"),
    "CC-BY-NC-4.0": ("署名-非商业性使用 4.0", "CC BY-NC 4.0"),
    "CC-BY-NC-SA-4.0": ("署名-非商业性使用-相同方式共享 4.0", "CC BY-NC-SA 4.0"),
    "CC-BY-ND-4.0": ("署名-禁止演绎 4.0", "CC BY-ND 4.0"),
    "CC-BY-NC-ND-4.0": ("署名-非商业性使用-禁止演绎 4.0", "CC BY-NC-ND 4.0"),
    "CC0-1.0": ("公共领域贡献 CC0", "CC0 1.0 (public domain)"),
    "ARR": ("保留所有权利", "All rights reserved"),
}

LANGUAGES = {
    "zh": ("中文", "Chinese"),
    "en": ("英文", "English"),
    "zh-en": ("中英双语", "Chinese and English"),
}

VISIBILITIES = {
    "private": ("仅自己", "Only me"),
    "school": ("本校", "My school"),
    "district": ("本区", "My district"),
    "region": ("全市公开", "Whole region"),
}

STATES = {
    "draft": ("草稿", "Draft"),
    "in_review": ("待审核", "In review"),
    "published": ("已发布", "Published"),
    "archived": ("已归档", "Archived"),
    "superseded": ("旧版本", "Superseded"),
}

VOCABULARIES = {
    "resource_kind": RESOURCE_KINDS,
    "course_kind": COURSE_KINDS,
    "category": CATEGORIES,
    "subject": SUBJECTS,
    "grade": GRADES,
    "edition": EDITIONS,
    "licence": LICENCES,
    "language": LANGUAGES,
    "visibility": VISIBILITIES,
    "state": STATES,
}


def label(vocabulary: str, code: str | None, locale: str | None = "zh_CN") -> str:
    if not code:
        return ""
    entry = VOCABULARIES[vocabulary].get(code)
    if entry is None:
        return code
    return entry[1] if (locale or "").startswith("en") else entry[0]

"""Writes math-g7-vol1.case.json, the demo CASE package, from the table of contents below.

The tables of contents were typed by hand from the publishers' public tables of contents
(人教版 2024 七年级上册 complete; 北师大版 2024 七年级上册: the chapter on linear
equations, linked to the 人教版 lessons by exactMatchOf).  Identifiers are UUID5 of a
readable key, so running this again gives the same identifiers.  Run:

    .venv/bin/python content/curriculum/build_case.py
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

NS = uuid.uuid5(uuid.NAMESPACE_URL, "https://shuyuan.example/curriculum/demo")
CHANGED = "2026-08-20T09:00:00+08:00"


def uid(key: str) -> str:
    return str(uuid.uuid5(NS, key))


# unit: (code, title, title_en, [(lesson code, title, title_en, [knowledge points (zh, en)])])
PEP = [
    (
        "1",
        "第一章 有理数",
        "Chapter 1 Rational numbers",
        [
            (
                "1.1",
                "正数和负数",
                "Positive and negative numbers",
                [
                    ("正数与负数的意义", "Meaning of positive and negative numbers"),
                    ("用正负数表示相反意义的量", "Quantities with opposite meanings"),
                ],
            ),
            (
                "1.2.1",
                "有理数的概念",
                "The concept of rational numbers",
                [("有理数的概念与分类", "Definition and classification of rational numbers")],
            ),
            (
                "1.2.2",
                "数轴",
                "The number line",
                [
                    ("数轴的三要素", "Origin, direction and unit of a number line"),
                    ("用数轴上的点表示有理数", "Rational numbers as points on the line"),
                ],
            ),
            ("1.2.3", "相反数", "Opposite numbers", [("相反数的意义", "Opposite numbers")]),
            (
                "1.2.4",
                "绝对值",
                "Absolute value",
                [
                    ("绝对值的意义", "Absolute value"),
                    ("有理数的大小比较", "Comparing rational numbers"),
                ],
            ),
        ],
    ),
    (
        "2",
        "第二章 有理数的运算",
        "Chapter 2 Operations on rational numbers",
        [
            (
                "2.1.1",
                "有理数的加法",
                "Addition of rational numbers",
                [("有理数加法法则", "Rule of addition"), ("加法运算律", "Laws of addition")],
            ),
            (
                "2.1.2",
                "有理数的减法",
                "Subtraction of rational numbers",
                [("有理数减法法则", "Rule of subtraction")],
            ),
            (
                "2.2.1",
                "有理数的乘法",
                "Multiplication of rational numbers",
                [("有理数乘法法则", "Rule of multiplication"), ("倒数", "Reciprocals")],
            ),
            (
                "2.2.2",
                "有理数的除法",
                "Division of rational numbers",
                [("有理数除法法则", "Rule of division")],
            ),
            (
                "2.3.1",
                "乘方",
                "Powers",
                [("乘方的意义", "Meaning of powers"), ("有理数的混合运算", "Mixed operations")],
            ),
            ("2.3.2", "科学记数法", "Scientific notation", [("科学记数法", "Scientific notation")]),
            (
                "2.3.3",
                "近似数",
                "Approximate numbers",
                [("近似数与精确度", "Approximation and precision")],
            ),
        ],
    ),
    (
        "3",
        "第三章 代数式",
        "Chapter 3 Algebraic expressions",
        [
            (
                "3.1",
                "列代数式表示数量关系",
                "Writing algebraic expressions",
                [
                    ("用字母表示数", "Letters standing for numbers"),
                    ("列代数式", "Writing expressions"),
                ],
            ),
            (
                "3.2",
                "代数式的值",
                "Value of an algebraic expression",
                [("求代数式的值", "Evaluating expressions")],
            ),
        ],
    ),
    (
        "4",
        "第四章 整式的加减",
        "Chapter 4 Adding and subtracting polynomials",
        [
            ("4.1", "整式", "Polynomials", [("单项式", "Monomials"), ("多项式", "Polynomials")]),
            (
                "4.2.1",
                "合并同类项",
                "Combining like terms",
                [("同类项", "Like terms"), ("合并同类项", "Combining like terms")],
            ),
            (
                "4.2.2",
                "去括号",
                "Removing brackets",
                [("去括号法则", "Rule for removing brackets")],
            ),
            (
                "4.2.3",
                "整式的加减",
                "Adding and subtracting polynomials",
                [("整式加减运算", "Adding and subtracting polynomials")],
            ),
        ],
    ),
    (
        "5",
        "第五章 一元一次方程",
        "Chapter 5 Linear equations in one unknown",
        [
            (
                "5.1.1",
                "从算式到方程",
                "From arithmetic to equations",
                [
                    ("方程与一元一次方程", "Equations and linear equations"),
                    ("方程的解", "Solutions of an equation"),
                ],
            ),
            (
                "5.1.2",
                "等式的性质",
                "Properties of equality",
                [("等式的性质", "Properties of equality")],
            ),
            (
                "5.2.1",
                "解一元一次方程：合并同类项与移项",
                "Solving: combining terms and moving terms",
                [("移项", "Moving terms across the equals sign")],
            ),
            (
                "5.2.2",
                "解一元一次方程：去括号与去分母",
                "Solving: removing brackets and denominators",
                [("去分母", "Clearing denominators")],
            ),
            (
                "5.3",
                "实际问题与一元一次方程",
                "Real problems and linear equations",
                [("列方程解应用题", "Word problems with equations")],
            ),
        ],
    ),
    (
        "6",
        "第六章 几何图形初步",
        "Chapter 6 First steps in geometry",
        [
            (
                "6.1.1",
                "立体图形与平面图形",
                "Solid and plane figures",
                [
                    ("立体图形与平面图形", "Solid and plane figures"),
                    ("展开图与三视图", "Nets and views"),
                ],
            ),
            (
                "6.1.2",
                "点、线、面、体",
                "Points, lines, surfaces and solids",
                [("点线面体的关系", "Points, lines, surfaces, solids")],
            ),
            (
                "6.2.1",
                "直线、射线、线段",
                "Lines, rays and segments",
                [("直线的基本事实", "Two points determine a line")],
            ),
            (
                "6.2.2",
                "线段的比较与运算",
                "Comparing segments",
                [
                    ("线段的中点", "Midpoint of a segment"),
                    ("两点之间线段最短", "The shortest path is a segment"),
                ],
            ),
            (
                "6.3.1",
                "角的概念",
                "Angles",
                [
                    ("角的概念与表示", "Angles and how they are named"),
                    ("角的度量", "Measuring angles"),
                ],
            ),
            ("6.3.2", "角的比较与运算", "Comparing angles", [("角的平分线", "Angle bisector")]),
            (
                "6.3.3",
                "余角和补角",
                "Complementary and supplementary angles",
                [("余角和补角", "Complementary and supplementary angles")],
            ),
            (
                "6.4",
                "课题学习 设计制作长方体形状的包装纸盒",
                "Project: design a box",
                [("长方体的展开图", "Nets of a cuboid")],
            ),
        ],
    ),
]

BNU = [
    (
        "5",
        "第五章 一元一次方程",
        "Chapter 5 Linear equations in one unknown",
        [
            ("5.1", "认识方程", "Getting to know equations", [], "5.1.1"),
            ("5.2", "一元一次方程的解法", "Solving linear equations", [], "5.2.1"),
            ("5.3", "一元一次方程的应用", "Applying linear equations", [], "5.3"),
        ],
    ),
]


def main() -> None:
    doc_id = uid("framework:math")
    doc_ref = {
        "title": "义务教育数学教材体系（七年级）",
        "identifier": doc_id,
        "uri": f"urn:uuid:{doc_id}",
    }
    items, associations = [], []

    def item(key, statement, item_type, code=None, label=None, level=None):
        identifier = uid(key)
        entry = {
            "identifier": identifier,
            "uri": f"urn:uuid:{identifier}",
            "fullStatement": statement,
            "CFItemType": item_type,
            "lastChangeDateTime": CHANGED,
            "language": "zh",
            "CFDocumentURI": doc_ref,
        }
        if code:
            entry["humanCodingScheme"] = code
        if label:
            entry["alternativeLabel"] = label
        if level:
            entry["educationLevel"] = level
        items.append(entry)
        return entry

    def link(kind, origin, destination, number=None):
        identifier = uid(f"assoc:{kind}:{origin['identifier']}:{destination['identifier']}")
        entry = {
            "identifier": identifier,
            "uri": f"urn:uuid:{identifier}",
            "associationType": kind,
            "CFDocumentURI": doc_ref,
            "lastChangeDateTime": CHANGED,
            "originNodeURI": {
                "title": origin.get("fullStatement", origin.get("title"))[:100],
                "identifier": origin["identifier"],
                "uri": origin["uri"],
            },
            "destinationNodeURI": {
                "title": destination.get("fullStatement", destination.get("title"))[:100],
                "identifier": destination["identifier"],
                "uri": destination["uri"],
            },
        }
        if number is not None:
            entry["sequenceNumber"] = number
        associations.append(entry)

    subject = item("subject:math", "数学", "Subject", "math", "Mathematics")
    link("isChildOf", subject, doc_ref, 1)
    stage = item("stage:junior", "初中", "Stage", "junior", "Junior secondary")
    link("isChildOf", stage, subject, 1)
    grade = item("grade:g7", "七年级", "Grade", "g7", "Grade 7", ["07"])
    link("isChildOf", grade, stage, 1)
    pep_lessons = {}
    for n, (edition_code, edition_name, edition_en, units) in enumerate(
        [
            ("pep", "人教版（2024）", "People's Education Press (2024)", PEP),
            ("bnu", "北师大版（2024）", "Beijing Normal University Press (2024)", BNU),
        ],
        start=1,
    ):
        edition = item(f"edition:{edition_code}", edition_name, "Edition", edition_code, edition_en)
        link("isChildOf", edition, grade, n)
        volume = item(
            f"volume:{edition_code}:g7a", "七年级上册", "Volume", "7A", "Grade 7, volume 1"
        )
        link("isChildOf", volume, edition, 1)
        previous = None
        for u, unit_data in enumerate(units, start=1):
            unit_code, unit_title, unit_en, lessons = unit_data
            unit = item(f"unit:{edition_code}:{unit_code}", unit_title, "Unit", unit_code, unit_en)
            link("isChildOf", unit, volume, u)
            for number, lesson_data in enumerate(lessons, start=1):
                code, title, title_en, points = lesson_data[:4]
                lesson = item(
                    f"lesson:{edition_code}:{code}",
                    f"{code} {title}",
                    "Lesson",
                    code,
                    f"{code} {title_en}",
                )
                link("isChildOf", lesson, unit, number)
                if previous is not None:
                    link("precedes", previous, lesson)
                previous = lesson
                if edition_code == "pep":
                    pep_lessons[code] = lesson
                else:
                    link("exactMatchOf", lesson, pep_lessons[lesson_data[4]])
                for k, (point, point_en) in enumerate(points, start=1):
                    kp = item(
                        f"kp:{edition_code}:{code}:{k}", point, "Knowledge Point", None, point_en
                    )
                    link("isChildOf", kp, lesson, k)
    # A prerequisite across chapters: solving equations needs combining like terms.
    link("isRelatedTo", pep_lessons["5.2.1"], pep_lessons["4.2.1"])

    package = {
        "CFDocument": {
            "identifier": doc_id,
            "uri": f"urn:uuid:{doc_id}",
            "creator": "书院 Shuyuan 西湖区教研室",
            "title": doc_ref["title"],
            "lastChangeDateTime": CHANGED,
            "language": "zh",
            "version": "2024.1",
            "adoptionStatus": "Adopted",
            "subject": ["math"],
            "description": "七年级数学：人教版（2024）七年级上册全册，"
            "北师大版（2024）七年级上册第五章，"
            "课时与知识点。",
            "CFPackageURI": {
                "title": doc_ref["title"],
                "identifier": doc_id,
                "uri": f"urn:uuid:{doc_id}",
            },
        },
        "CFItems": items,
        "CFAssociations": associations,
    }
    target = Path(__file__).with_name("math-g7-vol1.case.json")
    target.write_text(json.dumps(package, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {target} ({len(items)} items, {len(associations)} associations)")


if __name__ == "__main__":
    main()

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


# The 2024 人教版 七年级上册 数学 table of contents (see README.md in this folder for the
# source): chapter → 节 → 小节.  A chapter lists its entries in book order:
#   ("节", code, title, title_en, knowledge points, [小节 ...])  a 节; with no 小节 it is
#                                                               itself a lesson
#   (item type, key, title, title_en)                          数学活动 / 小结 / 复习题 /
#                                                               综合与实践 (not lessons)
# a 小节 is (code, title, title_en, knowledge points); a knowledge point (zh, en).
END = [
    ("数学活动", "activity", "数学活动", "Mathematics activity"),
    ("小结", "summary", "小结", "Summary"),
]


def _review(n: int):
    return ("复习题", "review", f"复习题{n}", f"Review exercises {n}")


PEP = [
    (
        "1",
        "第一章 有理数",
        "Chapter 1 Rational numbers",
        [
            (
                "节",
                "1.1",
                "正数和负数",
                "Positive and negative numbers",
                [
                    ("正数与负数的意义", "Meaning of positive and negative numbers"),
                    ("用正负数表示相反意义的量", "Quantities with opposite meanings"),
                ],
                [],
            ),
            (
                "节",
                "1.2",
                "有理数及其大小比较",
                "Rational numbers and their order",
                [],
                [
                    (
                        "1.2.1",
                        "有理数的概念",
                        "The concept of rational numbers",
                        [("有理数的概念与分类", "Definition and classification")],
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
                    ("1.2.4", "绝对值", "Absolute value", [("绝对值的意义", "Absolute value")]),
                    (
                        "1.2.5",
                        "有理数的大小比较",
                        "Comparing rational numbers",
                        [("有理数的大小比较", "Comparing rational numbers")],
                    ),
                ],
            ),
            *END,
            _review(1),
        ],
    ),
    (
        "2",
        "第二章 有理数的运算",
        "Chapter 2 Operations on rational numbers",
        [
            (
                "节",
                "2.1",
                "有理数的加法与减法",
                "Addition and subtraction of rational numbers",
                [],
                [
                    (
                        "2.1.1",
                        "有理数的加法",
                        "Addition of rational numbers",
                        [
                            ("有理数加法法则", "Rule of addition"),
                            ("加法运算律", "Laws of addition"),
                        ],
                    ),
                    (
                        "2.1.2",
                        "有理数的减法",
                        "Subtraction of rational numbers",
                        [
                            ("有理数减法法则", "Rule of subtraction"),
                            ("有理数的加减混合运算", "Mixed addition and subtraction"),
                        ],
                    ),
                ],
            ),
            (
                "节",
                "2.2",
                "有理数的乘法与除法",
                "Multiplication and division of rational numbers",
                [],
                [
                    (
                        "2.2.1",
                        "有理数的乘法",
                        "Multiplication of rational numbers",
                        [
                            ("有理数乘法法则", "Rule of multiplication"),
                            ("倒数", "Reciprocals"),
                            ("乘法运算律", "Laws of multiplication"),
                        ],
                    ),
                    (
                        "2.2.2",
                        "有理数的除法",
                        "Division of rational numbers",
                        [("有理数除法法则", "Rule of division")],
                    ),
                ],
            ),
            (
                "节",
                "2.3",
                "有理数的乘方",
                "Powers of rational numbers",
                [],
                [
                    (
                        "2.3.1",
                        "乘方",
                        "Powers",
                        [
                            ("乘方的意义", "Meaning of powers"),
                            ("有理数的混合运算", "Mixed operations"),
                        ],
                    ),
                    (
                        "2.3.2",
                        "科学记数法",
                        "Scientific notation",
                        [("科学记数法", "Scientific notation")],
                    ),
                    (
                        "2.3.3",
                        "近似数",
                        "Approximate numbers",
                        [("近似数与精确度", "Approximation and precision")],
                    ),
                ],
            ),
            *END,
            _review(2),
            ("综合与实践", "practice", "综合与实践 进位制的认识与探究", "Project: number bases"),
        ],
    ),
    (
        "3",
        "第三章 代数式",
        "Chapter 3 Algebraic expressions",
        [
            (
                "节",
                "3.1",
                "列代数式表示数量关系",
                "Writing algebraic expressions",
                [
                    ("用字母表示数", "Letters standing for numbers"),
                    ("列代数式", "Writing expressions"),
                ],
                [],
            ),
            (
                "节",
                "3.2",
                "代数式的值",
                "Value of an algebraic expression",
                [("求代数式的值", "Evaluating expressions")],
                [],
            ),
            *END,
            _review(3),
        ],
    ),
    (
        "4",
        "第四章 整式的加减",
        "Chapter 4 Adding and subtracting polynomials",
        [
            (
                "节",
                "4.1",
                "整式",
                "Polynomials",
                [("单项式", "Monomials"), ("多项式", "Polynomials")],
                [],
            ),
            (
                "节",
                "4.2",
                "整式的加法与减法",
                "Adding and subtracting polynomials",
                [
                    ("同类项", "Like terms"),
                    ("合并同类项", "Combining like terms"),
                    ("去括号法则", "Rule for removing brackets"),
                    ("整式加减运算", "Adding and subtracting polynomials"),
                ],
                [],
            ),
            *END,
            _review(4),
        ],
    ),
    (
        "5",
        "第五章 一元一次方程",
        "Chapter 5 Linear equations in one unknown",
        [
            (
                "节",
                "5.1",
                "方程",
                "Equations",
                [],
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
                ],
            ),
            (
                "节",
                "5.2",
                "解一元一次方程",
                "Solving linear equations",
                [
                    ("合并同类项与移项", "Combining and moving terms"),
                    ("去括号与去分母", "Removing brackets and denominators"),
                ],
                [],
            ),
            (
                "节",
                "5.3",
                "实际问题与一元一次方程",
                "Real problems and linear equations",
                [("列方程解应用题", "Word problems with equations")],
                [],
            ),
            *END,
            _review(5),
        ],
    ),
    (
        "6",
        "第六章 几何图形初步",
        "Chapter 6 First steps in geometry",
        [
            (
                "节",
                "6.1",
                "几何图形",
                "Geometric figures",
                [],
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
                ],
            ),
            (
                "节",
                "6.2",
                "直线、射线、线段",
                "Lines, rays and segments",
                [],
                [
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
                ],
            ),
            (
                "节",
                "6.3",
                "角",
                "Angles",
                [],
                [
                    (
                        "6.3.1",
                        "角的概念",
                        "The concept of an angle",
                        [
                            ("角的概念与表示", "Angles and how they are named"),
                            ("角的度量", "Measuring angles"),
                        ],
                    ),
                    (
                        "6.3.2",
                        "角的比较与运算",
                        "Comparing angles",
                        [("角的平分线", "Angle bisector")],
                    ),
                    (
                        "6.3.3",
                        "余角和补角",
                        "Complementary and supplementary angles",
                        [("余角和补角", "Complementary and supplementary angles")],
                    ),
                ],
            ),
            *END,
            _review(6),
            (
                "综合与实践",
                "practice",
                "综合与实践 设计学校田径运动会比赛场地",
                "Project: lay out a school sports ground",
            ),
        ],
    ),
]

# 北师大版（2024）七年级上册 第五章: its 节 have no 小节.  Equivalences only where the
# content really is the same: 5.1 认识方程 is the whole of 人教版 5.1 方程 (节 to 节), and
# its knowledge points match 人教版 5.1.1 and 5.1.2 one to one; 5.2 and 5.3 match 人教版
# 5.2 and 5.3.  (code, title, title_en, [(kp zh, kp en, 人教版 kp zh)], 人教版 节 code)
BNU = [
    (
        "5",
        "第五章 一元一次方程",
        "Chapter 5 Linear equations in one unknown",
        [
            (
                "5.1",
                "认识方程",
                "Getting to know equations",
                [
                    ("方程与一元一次方程", "Equations and linear equations", "方程与一元一次方程"),
                    ("等式的基本性质", "Basic properties of equality", "等式的性质"),
                ],
                "5.1",
            ),
            (
                "5.2",
                "一元一次方程的解法",
                "Solving linear equations",
                [("解一元一次方程", "Solving linear equations", None)],
                "5.2",
            ),
            (
                "5.3",
                "一元一次方程的应用",
                "Applying linear equations",
                [("列方程解应用题", "Word problems with equations", "列方程解应用题")],
                "5.3",
            ),
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
    pep_nodes: dict[str, dict] = {}
    kps: dict[tuple[str, str], dict] = {}
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
        for u, (unit_code, unit_title, unit_en, entries) in enumerate(units, start=1):
            unit = item(f"unit:{edition_code}:{unit_code}", unit_title, "Unit", unit_code, unit_en)
            link("isChildOf", unit, volume, u)

            def lesson_node(
                parent, number, code, title, title_en, item_type, points, edition_code=edition_code
            ):
                nonlocal previous
                node = item(
                    f"lesson:{edition_code}:{code}",
                    f"{code} {title}",
                    item_type,
                    code,
                    f"{code} {title_en}",
                )
                link("isChildOf", node, parent, number)
                if previous is not None:
                    link("precedes", previous, node)
                previous = node
                for k, point in enumerate(points, start=1):
                    kp = item(
                        f"kp:{edition_code}:{code}:{k}", point[0], "Knowledge Point", None, point[1]
                    )
                    link("isChildOf", kp, node, k)
                    kps[(edition_code, point[0])] = kp
                    if len(point) > 2 and point[2]:
                        link("exactMatchOf", kp, kps[("pep", point[2])])
                return node

            for number, entry in enumerate(entries, start=1):
                if edition_code == "bnu":
                    code, title, title_en, points, pep_code = entry
                    node = lesson_node(unit, number, code, title, title_en, "节", points)
                    link("exactMatchOf", node, pep_nodes[pep_code])
                    continue
                if entry[0] != "节":
                    item_type, key, title, title_en = entry
                    other = item(
                        f"other:{edition_code}:{unit_code}:{key}", title, item_type, None, title_en
                    )
                    link("isChildOf", other, unit, number)
                    continue
                _, code, title, title_en, points, subsections = entry
                if not subsections:  # a 节 taught as one lesson
                    pep_nodes[code] = lesson_node(unit, number, code, title, title_en, "节", points)
                    continue
                section = item(
                    f"section:{edition_code}:{code}",
                    f"{code} {title}",
                    "节",
                    code,
                    f"{code} {title_en}",
                )
                link("isChildOf", section, unit, number)
                pep_nodes[code] = section
                for position, (sub_code, sub_title, sub_en, sub_points) in enumerate(
                    subsections, start=1
                ):
                    pep_nodes[sub_code] = lesson_node(
                        section, position, sub_code, sub_title, sub_en, "小节", sub_points
                    )
    # A prerequisite across chapters: solving equations needs combining like terms.
    link("isRelatedTo", pep_nodes["5.2"], pep_nodes["4.2"])

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
            "description": "七年级数学：人教版（2024）七年级上册全册（章、节、小节，"
            "数学活动、小结、复习题、综合与实践），北师大版（2024）七年级上册第五章，"
            "知识点；目录来源见 content/curriculum/README.md。",
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

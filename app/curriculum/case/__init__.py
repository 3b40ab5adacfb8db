"""1EdTech CASE 1.0 packages (CFPackage JSON): validation, import and export.

Import is all-or-nothing: the whole package is checked first and every problem is
reported (with where it is and which identifier it concerns); only a clean package is
written, in the caller's one transaction.  A package whose CFDocument identifier is
already stored updates that framework in place: items and associations are matched by
identifier, new ones are added and those missing from the new version are removed.

Every object keeps the JSON it came in, so exporting gives back the same document.

Conventions of this application on top of CASE (documented in docs/curriculum.md):
``CFItemType`` names the textbook level (Subject, Stage, Grade, Edition, Volume, Unit,
Lesson, Knowledge Point, or 学科/学段/年级/版本/册次/单元/课时/知识点), ``humanCodingScheme``
carries the vocabulary code of subject, grade and edition nodes (``math``, ``g7``,
``pep``) and ``alternativeLabel`` the English title.

Modules: ``vocabulary``, ``validation``, ``packages``; the names other modules use are
re-exported here.
"""

from app.curriculum.case.packages import (
    derive,
    export_package,
    import_package,
    rederive,
)
from app.curriculum.case.validation import (
    CHUNK,
    MAX_ASSOCIATIONS,
    MAX_ITEMS,
    UUID_RE,
    Problems,
    chunks,
    cycles,
    is_str,
    lookup,
    postgres,
    validate_package,
)
from app.curriculum.case.vocabulary import (
    ACYCLIC_TYPES,
    ASSOCIATION_TYPES,
    LEVEL_ITEM_TYPES,
    LEVEL_NAMES,
    ImportReport,
    association_label,
    level_of,
    sequence_number,
)

__all__ = [
    "ACYCLIC_TYPES",
    "ASSOCIATION_TYPES",
    "CHUNK",
    "ImportReport",
    "LEVEL_ITEM_TYPES",
    "LEVEL_NAMES",
    "MAX_ASSOCIATIONS",
    "MAX_ITEMS",
    "Problems",
    "UUID_RE",
    "association_label",
    "chunks",
    "cycles",
    "derive",
    "export_package",
    "import_package",
    "is_str",
    "level_of",
    "lookup",
    "postgres",
    "rederive",
    "sequence_number",
    "validate_package",
]

"""The loan business's data files (tags.yml, products.yml, rules.yml, inspection_rules.yml), checked together at
start: the launcher refuses to start and the web app to load while one is wrong."""

from __future__ import annotations

from lending.catalog import ProductFileError, read_products
from lending.inspection import RULES_FILE as INSPECTION_RULES
from lending.inspection import InspectionRulesError, Rules
from lending.risk import RuleBook, RuleFileError
from lending.tags import TAGS_FILE, TagFileError, read_catalogue


def data_file_problems() -> list[str]:
    """One line per wrong file, saying what is wrong; empty when all are right."""
    try:
        read_catalogue(TAGS_FILE)
    except TagFileError as exc:  # the others name tags: their check would repeat this one
        return [f"lending/{TAGS_FILE.name}: {exc}"]
    problems = []
    for name, read in (
        ("products.yml", read_products),
        ("rules.yml", RuleBook.load),
        (INSPECTION_RULES.name, Rules.load),
    ):
        try:
            read()
        except (ProductFileError, RuleFileError, TagFileError, InspectionRulesError) as exc:
            problems.append(f"lending/{name}: {exc}")
    return problems

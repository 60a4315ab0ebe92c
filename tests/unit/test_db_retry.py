"""A background job's write that SQLite refuses for a conflict is run again, not lost."""
from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from sunshine.db import in_unit_of_work, unit_of_work
from sunshine.models import AuditEntry, audit


def conflicting_work(db_url: str, runs: list):
    """Reads, then (the first time) another process writes, then it writes."""
    def work(session):
        runs.append(len(session.scalars(select(AuditEntry.id)).all()))
        if len(runs) == 1:
            with unit_of_work(db_url) as other:
                audit(other, "officer:officer01", "other.write", "x", 1)
        audit(session, "system", "job.write", "x", 2)
        session.flush()
    return work


def test_a_write_refused_for_a_conflict_is_run_again(db_url):
    if not db_url.startswith("sqlite"):
        pytest.skip("the conflict is SQLite's")
    with pytest.raises(OperationalError, match="locked"):  # what a plain unit of work does
        with unit_of_work(db_url) as session:
            conflicting_work(db_url, [])(session)
    runs = []
    in_unit_of_work(db_url, conflicting_work(db_url, runs))
    assert runs == [1, 2]  # the second run saw the other process's write
    with unit_of_work(db_url) as session:
        assert session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all() == [
            "other.write", "other.write", "job.write"]

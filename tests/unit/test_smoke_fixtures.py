from sqlalchemy import func, select

from sunshine.db import unit_of_work
from sunshine.models import Customer


def test_demo_db_has_the_village(demo_db_url):
    with unit_of_work(demo_db_url) as s:
        assert s.scalar(select(func.count()).select_from(Customer)) == 11

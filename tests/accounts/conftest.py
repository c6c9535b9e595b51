import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def fresh_cache(db):
    cache.clear()  # failed-login counts

import pytest

from identities.models import Identity


@pytest.fixture
def ada(db):
    return Identity.objects.create(name="Ada Lovelace")


@pytest.fixture
def grace(db):
    return Identity.objects.create(name="Grace Hopper")

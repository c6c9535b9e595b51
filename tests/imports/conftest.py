import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from imports.models import BulkImport, ImportFile


@pytest.fixture
def post_zip(member_client):
    """post_zip(bytes, name) -> the response of sending a zip on the import page."""

    def post(data, name="people.zip"):
        archive = SimpleUploadedFile(name, data, content_type="application/zip")
        return member_client.post("/imports/", {"archive": archive})

    return post


@pytest.fixture
def nothing_changed(private_storage):
    """Call it after a refused import: no import row, no file row, no stored file."""

    def check():
        assert BulkImport.objects.count() == 0
        assert ImportFile.objects.count() == 0
        stored = [p for p in private_storage.rglob("*") if p.is_file()]
        assert stored == []

    return check

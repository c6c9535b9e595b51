import pytest
from django.urls import reverse

from tests.training.conftest import enrolled  # noqa: F401  (a fixture)
from training.forms import TrainForm
from training.models import TrainingJob

pytestmark = pytest.mark.django_db


def form_as_shown(**changes):
    """The Train form's fields as the page fills them in, with changes."""
    fields = TrainForm().fields
    shown = {name: field.initial for name, field in fields.items() if field.initial is not None}
    return shown | changes


def test_a_second_press_of_train_shows_the_job_already_queued(client, make_user, enrolled):
    enrolled(people=2, per_person=2)
    client.force_login(make_user("trainer"))
    form = form_as_shown(epochs=3)
    first = client.post(reverse("training:home"), form)
    second = client.post(reverse("training:home"), form, follow=True)
    job = TrainingJob.objects.get()
    assert first.url == second.redirect_chain[-1][0] == job.get_absolute_url()
    assert f"Training job #{job.pk} with these settings on the same photos is already queued" in (
        second.content.decode()
    )

"""The training parameters are declared once, in TrainConfig's fields (training.ml.config)
and training.parameters: the Training page's form, the API and `manage.py train` are built
from them, so they take the same parameters with the same limits, and a limit changed
there is changed in all three."""

import dataclasses
import types

import pytest
from django.core.management import CommandError

from api.serializers import TrainingParamsSerializer
from training.forms import TrainForm
from training.management.commands.train import Command
from training.ml.backbones import REGISTRY
from training.ml.config import TrainConfig
from training.parameters import training_parameters

pytestmark = pytest.mark.django_db

NUMBERS = [p for p in training_parameters() if p.minimum is not None]


def form_errors(name, value):
    """The Training page's errors on one field, the others as the page fills them in."""
    form = TrainForm()
    shown = {field: form.fields[field].initial for field in form.fields}
    form = TrainForm(shown | {name: value})
    form.is_valid()
    return form.errors.get(name)


def api_errors(name, value):
    params = TrainingParamsSerializer(data={name: value})
    params.is_valid()
    return params.errors.get(name)


def command_error(name, value):
    """What `manage.py train --name value` says before queueing anything; None if fine."""
    parser = Command().create_parser("manage.py", "train")
    try:
        parser.parse_args([f"--{name.replace('_', '-')}={value}"])
    except CommandError as exc:
        return str(exc)
    return None


def config_error(name, value):
    if name not in TrainConfig.__dataclass_fields__:
        return None  # the dataset split's, which the three check themselves
    extra = {"architecture": "resnet18"} if name == "image_size" else {}
    try:
        TrainConfig.from_dict(extra | {name: value})
    except ValueError as exc:
        return str(exc)
    return None


def just_inside(parameter):
    step = 1 if parameter.kind is int else 1e-6
    low = parameter.minimum + step if parameter.exclusive_minimum else parameter.minimum
    high = parameter.maximum - step if parameter.exclusive_maximum else parameter.maximum
    return [parameter.kind(v) for v in [low, high] + ([0] if parameter.zero else [])]


def just_outside(parameter):
    step = 1 if parameter.kind is int else 1e-6
    low = parameter.minimum if parameter.exclusive_minimum else parameter.minimum - step
    high = parameter.maximum if parameter.exclusive_maximum else parameter.maximum + step
    return [parameter.kind(v) for v in [low, high] + ([-1] if parameter.zero else [])]


def test_the_form_the_api_and_the_command_take_every_parameter():
    names = [parameter.name for parameter in training_parameters()]
    assert {field.name for field in dataclasses.fields(TrainConfig)} < set(names)
    assert list(TrainForm().fields) == names
    assert list(TrainingParamsSerializer().fields) == names
    parser = Command().create_parser("manage.py", "train")
    assert set(names) <= {action.dest for action in parser._actions}


@pytest.mark.parametrize("parameter", NUMBERS, ids=[p.name for p in NUMBERS])
def test_the_three_accept_and_refuse_the_same_values(parameter):
    for value in just_inside(parameter):
        assert not form_errors(parameter.name, value), value
        assert not api_errors(parameter.name, value), value
        assert command_error(parameter.name, value) is None, value
        assert config_error(parameter.name, value) is None, value
    for value in just_outside(parameter):
        message = parameter.range_error(value)
        assert message in form_errors(parameter.name, value), value
        assert message in api_errors(parameter.name, value), value
        assert message in command_error(parameter.name, value), value
        if parameter.name in TrainConfig.__dataclass_fields__:
            # image_size's own words leave out 0, which TrainConfig takes as its default.
            error = config_error(parameter.name, value)
            assert error is not None and (error == message or parameter.zero), value


def test_the_networks_and_their_stages_come_from_the_backbone_registry():
    stages = {stage for backbone in REGISTRY.values() for stage in backbone.stages}
    parser = Command().create_parser("manage.py", "train")
    command = {action.dest: action for action in parser._actions}
    form, api = TrainForm().fields, TrainingParamsSerializer().fields
    assert [value for value, _ in form["architecture"].choices] == list(REGISTRY)
    assert list(api["architecture"].choices) == list(command["architecture"].choices)
    assert list(command["architecture"].choices) == list(REGISTRY)
    for choices in (
        [value for value, _ in form["fine_tune_from"].choices],
        list(api["fine_tune_from"].choices),
        list(command["fine_tune_from"].choices),
    ):
        assert set(choices) == stages | {"all", "auto"}
    assert "layer4" in command["fine_tune_from"].help and "stage5" in command["fine_tune_from"].help


@pytest.fixture
def at_most_50_epochs(monkeypatch):
    """TrainConfig's epochs field with its maximum changed to 50, there and nowhere else."""
    field = TrainConfig.__dataclass_fields__["epochs"]
    monkeypatch.setattr(field, "metadata", types.MappingProxyType(field.metadata | {"max": 50}))


def test_a_limit_changed_in_trainconfig_changes_the_form_the_api_and_the_command(
    at_most_50_epochs,
):
    refused = "epochs must be between 1 and 50, got 51"
    with pytest.raises(ValueError, match=refused):
        TrainConfig(epochs=51)
    assert refused in form_errors("epochs", 51)
    assert refused in api_errors("epochs", 51)
    assert refused in command_error("epochs", 51)
    assert not form_errors("epochs", 50) and not api_errors("epochs", 50)
    assert command_error("epochs", 50) is None
    assert TrainForm().fields["epochs"].widget.attrs["max"] == 50

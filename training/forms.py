from django import forms

from .ml.backbones import REGISTRY
from .parameters import training_parameters

LABELS = {
    "class_means": "Each person's mean face",
    "cosine": "Cosine, trained from the mean faces",
    "linear": "Linear",
    "margin": "Margin to the next person",
    "all": "All layers",
    "auto": "Automatic",
    "none": "None",
    "light": "Light",
    "strong": "Strong",
}


def _stage_labels():
    """'From layer4 (ResNet)' and the like, from the backbone registry; every network's
    last stage, its head, is "Final layer only"."""
    labels = {}
    for backbone in REGISTRY.values():
        for stage in backbone.stages:
            owners = [b for b in REGISTRY.values() if stage in b.stages]
            if all(b.stages[-1] == stage for b in owners) and len(owners) == len(REGISTRY):
                labels[stage] = "Final layer only"
                continue
            families = dict.fromkeys(b.title.split(" (")[0].rstrip("0123456789") for b in owners)
            labels[stage] = f"From {stage} ({' / '.join(families)})"
    return labels


LABELS |= _stage_labels()


# Field labels where the parameter's name does not read well on the page.
FIELD_LABELS = {
    "architecture": "Network",
    "fine_tune_from": "Train",
    "head": "Last layer",
    "image_size": "Input size (px)",
    "pretrained": "Starting weights",
    "val_fraction": "Validation share",
}
NETWORK_TITLES = {name: backbone.title for name, backbone in REGISTRY.items()}


class TrainForm(forms.Form):
    """Every training parameter (training.parameters); the defaults are faceweb's."""

    BASIC = ["architecture", "head", "fine_tune_from", "epochs", "learning_rate",
             "image_size", "augmentation", "pretrained"]  # fmt: skip

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        from training.services import default_params

        defaults = default_params()
        for parameter in training_parameters():
            self.fields[parameter.name] = form_field(parameter)
            self.fields[parameter.name].initial = defaults[parameter.name]

    def basic_fields(self):
        return [self[name] for name in self.BASIC]

    def advanced_fields(self):
        return [self[name] for name in self.fields if name not in self.BASIC]


def form_field(parameter):
    """The form field of a training parameter, with its limits or choices."""
    common = {"help_text": parameter.help, "label": FIELD_LABELS.get(parameter.name)}
    if parameter.choices:
        titles = NETWORK_TITLES if parameter.name == "architecture" else LABELS
        shown = [(value, titles.get(value, value)) for value in parameter.choices]
        return forms.ChoiceField(choices=shown, **common)
    if parameter.kind is str:
        return forms.CharField(max_length=parameter.max_length, **common)
    field_class = forms.IntegerField if parameter.kind is int else forms.FloatField
    # The validator words an error as the API and the command line do, and knows open ends
    # and 0 (Django's min_value would add a second message); the browser gets the limits.
    field = field_class(validators=[in_range(parameter)], **common)
    field.widget.attrs |= {"min": parameter.lowest, "max": parameter.maximum}
    return field


def in_range(parameter):
    def check(value):
        error = parameter.range_error(value)
        if error:
            raise forms.ValidationError(error)

    return check

from django import forms

from .ml import config as ml

LABELS = {
    "fc": "Final layer only",
    "layer4": "From layer4",
    "layer3": "From layer3",
    "all": "All layers",
    "auto": "Automatic",
    "none": "None",
    "light": "Light",
    "strong": "Strong",
}


def choices(values):
    return [(value, LABELS.get(value, value)) for value in values]


class TrainForm(forms.Form):
    """Every training parameter; the defaults are faceweb's (training.ml.config)."""

    architecture = forms.ChoiceField(choices=choices(ml.ARCHITECTURES))
    fine_tune_from = forms.ChoiceField(
        choices=choices(ml.FINE_TUNE_CHOICES),
        label="Train",
        help_text="Automatic: from layer4 with pretrained weights, every layer from random ones.",
    )
    epochs = forms.IntegerField(min_value=1, max_value=1000)
    learning_rate = forms.FloatField(min_value=1e-6, max_value=1.0)
    batch_size = forms.IntegerField(min_value=1, max_value=512)
    image_size = forms.IntegerField(
        min_value=ml.MIN_IMAGE_SIZE, max_value=ml.MAX_IMAGE_SIZE, label="Input size (px)"
    )
    augmentation = forms.ChoiceField(
        choices=choices(ml.AUGMENTATIONS),
        help_text="Light: flips, small turns and shifts. Strong: also colour changes and "
        "hidden patches.",
    )
    label_smoothing = forms.FloatField(min_value=0, max_value=0.5)
    weight_decay = forms.FloatField(min_value=0, max_value=1)
    optimizer = forms.ChoiceField(choices=choices(ml.OPTIMIZERS))
    schedule = forms.ChoiceField(choices=choices(ml.SCHEDULES))
    precision = forms.ChoiceField(choices=choices(ml.PRECISIONS))
    unknown_score = forms.ChoiceField(choices=choices(ml.UNKNOWN_SCORES), label="Unknown score")
    early_stopping_patience = forms.IntegerField(
        min_value=0, max_value=1000, label="Early stopping patience",
        help_text="Stop after this many epochs without a better validation accuracy (0: off).",
    )  # fmt: skip
    cached_views = forms.IntegerField(
        min_value=0, max_value=64, label="Cached views",
        help_text="With frozen layers: augmented views per photo computed once (0: none).",
    )  # fmt: skip
    seed = forms.IntegerField(min_value=0, max_value=2**32 - 1)
    pretrained = forms.CharField(
        max_length=500,
        label="Starting weights",
        help_text="imagenet, none (random weights) or the path of a state dict on the workers.",
    )

    BASIC = ["fine_tune_from", "epochs", "learning_rate", "image_size", "augmentation",
             "pretrained"]  # fmt: skip

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        from training.services import default_params

        defaults = default_params()
        for name, field in self.fields.items():
            field.initial = defaults[name]

    def basic_fields(self):
        return [self[name] for name in self.BASIC]

    def advanced_fields(self):
        return [self[name] for name in self.fields if name not in self.BASIC]

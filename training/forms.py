from django import forms

from .ml import config as ml
from .ml.backbones import REGISTRY

LABELS = {
    "fc": "Final layer only",
    "embedding": "From the embedding layer",
    "stage1": "From stage1 (face network)",
    "stage2": "From stage2 (face network)",
    "stage3": "From stage3 (face network)",
    "stage4": "From stage4 (face network)",
    "stage5": "From stage5 (face network)",
    "layer4": "From layer4 (ResNet)",
    "layer3": "From layer3 (ResNet)",
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


def choices(values):
    return [(value, LABELS.get(value, value)) for value in values]


class TrainForm(forms.Form):
    """Every training parameter; the defaults are faceweb's (training.ml.config)."""

    architecture = forms.ChoiceField(
        choices=[(name, backbone.title) for name, backbone in REGISTRY.items()],
        label="Network",
        help_text="The face network knows faces already and tells strangers apart; the "
        "ResNets start from ImageNet (README: which to pick).",
    )
    fine_tune_from = forms.ChoiceField(
        choices=choices(ml.FINE_TUNE_CHOICES),
        label="Train",
        help_text="Automatic: the final layer of the face network, from layer4 of a ResNet "
        "with pretrained weights, every layer from random ones.",
    )
    head = forms.ChoiceField(
        choices=choices(ml.HEADS),
        label="Last layer",
        help_text="Automatic: each person's mean face on the face network (nothing to "
        "train, seconds); a trained linear layer on a ResNet.",
    )
    epochs = forms.IntegerField(min_value=1, max_value=1000)
    learning_rate = forms.FloatField(min_value=1e-6, max_value=1.0)
    batch_size = forms.IntegerField(min_value=1, max_value=512)
    image_size = forms.IntegerField(
        min_value=0,
        max_value=ml.MAX_IMAGE_SIZE,
        label="Input size (px)",
        help_text="0: the network's own (150 for the face network, which takes no other).",
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
        help_text="auto (the network's own: face or imagenet), none (random weights) or the "
        "name of a state-dict file in the models folder.",
    )

    BASIC = ["architecture", "head", "fine_tune_from", "epochs", "learning_rate",
             "image_size", "augmentation", "pretrained"]  # fmt: skip

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

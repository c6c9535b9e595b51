from django import forms
from django.conf import settings


class TrainForm(forms.Form):
    epochs = forms.IntegerField(min_value=1, max_value=500)
    learning_rate = forms.FloatField(min_value=1e-6, max_value=1.0)
    pretrained = forms.CharField(
        max_length=500,
        help_text="imagenet, none (random weights) or the path of a state dict on the workers.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        from training.services import default_params

        defaults = default_params()
        self.fields["epochs"].initial = defaults["epochs"]
        self.fields["learning_rate"].initial = defaults["learning_rate"]
        self.fields["pretrained"].initial = settings.FACEWEB_PRETRAINED

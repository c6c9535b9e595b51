from django import forms
from django.conf import settings

from .models import Identity, clean_new_name


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleImageField(forms.FileField):
    """Several files from one <input multiple>; each is validated later, from its bytes."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput(attrs={"accept": "image/*"}))
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        files = data if isinstance(data, list | tuple) else [data]
        files = [f for f in files if f]
        if not files:
            raise forms.ValidationError("Choose at least one photo.")
        if len(files) > settings.FACEWEB_MAX_FILES_PER_UPLOAD:
            raise forms.ValidationError(
                f"At most {settings.FACEWEB_MAX_FILES_PER_UPLOAD} photos at a time."
            )
        return files


class IdentityForm(forms.ModelForm):
    class Meta:
        model = Identity
        fields = ["name", "notes", "is_active"]
        widgets = {"notes": forms.Textarea(attrs={"rows": 3})}

    def clean_name(self):
        return clean_new_name(self.cleaned_data["name"], exclude_pk=self.instance.pk)


class PhotoUploadForm(forms.Form):
    photos = MultipleImageField(label="Photos")


class IdentifyForm(forms.Form):
    # One photo, several, or zips of photos (identities.batches opens them).
    photo = MultipleImageField(
        label="Photos",
        widget=MultipleFileInput(attrs={"accept": "image/*,.zip,application/zip"}),
    )
    strictness = forms.ChoiceField(
        choices=[
            ("strict", "Strict — name only faces it is sure of"),
            ("normal", "Normal"),
            ("lenient", "Lenient — name more faces, with more mistakes"),
        ],
        initial="normal",
        required=False,
        help_text="How sure the model must be before it names someone instead of saying unknown.",
    )

from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Q

from .models import Identity, PredictionFace
from .review import DECISIONS, NAME


class HistoryFilterForm(forms.Form):
    """Filters of the History page; every field is optional."""

    identity = forms.ModelChoiceField(
        Identity.objects.order_by("name"), required=False, empty_label="Anyone", label="Person"
    )
    unknown_only = forms.BooleanField(required=False, label="Unknown faces only")
    below = forms.FloatField(
        required=False,
        min_value=0,
        max_value=100,
        label="Confidence below (%)",
        widget=forms.NumberInput(attrs={"step": "1", "placeholder": "e.g. 60"}),
    )
    since = forms.DateField(
        required=False, label="From", widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        required=False, label="To", widget=forms.DateInput(attrs={"type": "date"})
    )
    asked_by = forms.ModelChoiceField(
        get_user_model().objects.order_by("username"),
        required=False,
        empty_label="Anyone",
        label="Asked by",
    )

    def __init__(self, *args, can_see_everyone=False, visible=None, **kwargs):
        super().__init__(*args, **kwargs)
        if not can_see_everyone:
            del self.fields["asked_by"]
        if visible is not None:
            # Only names found in identifications this user may see: the people list itself
            # is for editors.
            named = Q(recognitions__prediction__in=visible) | Q(
                reviewed_faces__prediction__in=visible
            )
            people = Identity.objects.filter(named).distinct().order_by("name")
            self.fields["identity"].queryset = people

    def clean(self):
        data = super().clean()
        if data.get("since") and data.get("until") and data["since"] > data["until"]:
            raise forms.ValidationError("The start date is after the end date.")
        return data

    def filter(self, predictions):
        """predictions narrowed to what the (valid) form asks for."""
        data = self.cleaned_data
        if data.get("identity"):
            person = data["identity"]
            predictions = predictions.filter(
                Q(face_rows__identity=person) | Q(face_rows__reviewed_identity=person)
            )
        if data.get("unknown_only"):
            predictions = predictions.filter(face_rows__identity__isnull=True)
        if data.get("below") is not None:
            predictions = predictions.filter(face_rows__confidence__lt=data["below"] / 100)
        if data.get("since"):
            predictions = predictions.filter(created_at__date__gte=data["since"])
        if data.get("until"):
            predictions = predictions.filter(created_at__date__lte=data["until"])
        if data.get("asked_by"):
            predictions = predictions.filter(created_by=data["asked_by"])
        return predictions.distinct()


BOTH_NAMES = (
    "You picked {picked} and also typed the new name “{typed}”: nothing was saved. "
    "Clear one of the two and answer again."
)


def check_one_name(data):
    """A person picked and a different new name typed is ambiguous: say so rather than
    silently drop the typed name (the same name in any case is no conflict)."""
    picked, typed = data.get("identity"), " ".join((data.get("new_name") or "").split())
    if picked and typed and typed.casefold() != picked.name.casefold():
        raise forms.ValidationError(BOTH_NAMES.format(picked=picked.name, typed=typed))


class ReviewForm(forms.Form):
    """A reviewer's decision on one face: the button pressed, and who it is."""

    decision = forms.ChoiceField(choices=[(d, d) for d in DECISIONS])
    identity = forms.ModelChoiceField(
        Identity.objects.order_by("name"), required=False, empty_label="Pick a person…"
    )
    new_name = forms.CharField(
        required=False,
        max_length=200,
        widget=forms.TextInput(attrs={"placeholder": "or a new person's name"}),
    )

    def clean(self):
        data = super().clean()
        if data.get("decision") == NAME:
            check_one_name(data)
        return data


class BulkReviewForm(ReviewForm):
    """One decision for the faces ticked on a Review page."""

    faces = forms.ModelMultipleChoiceField(
        PredictionFace.objects.select_related("prediction", "identity"),
        error_messages={"required": "Tick the faces you are answering for first."},
    )


class RecentNamesForm(forms.Form):
    """How far back the Recent names page looks."""

    days = forms.IntegerField(min_value=1, max_value=90, initial=7, label="Named in the last")


class NameGroupForm(forms.Form):
    """A group of unknown faces becomes a new person, or joins an existing one."""

    faces = forms.TypedMultipleChoiceField(coerce=int, choices=[])
    identity = forms.ModelChoiceField(
        Identity.objects.order_by("name"), required=False, empty_label="Pick a person…"
    )
    new_name = forms.CharField(
        required=False,
        max_length=200,
        widget=forms.TextInput(attrs={"placeholder": "or a new person's name"}),
    )

    def __init__(self, *args, face_ids=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["faces"].choices = [(pk, pk) for pk in face_ids]

    def clean(self):
        data = super().clean()
        if not data.get("identity") and not " ".join(data.get("new_name", "").split()):
            raise forms.ValidationError("Pick a person or type the name of a new one.")
        check_one_name(data)
        return data

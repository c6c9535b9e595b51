"""Forms of people management. Selections travel as hidden fields from the page where
they were made to the confirmation page, and are checked again when confirmed."""

from django import forms

from .models import Identity, clean_new_name


class PeopleField(forms.ModelMultipleChoiceField):
    def __init__(self, **kwargs):
        kwargs.setdefault("widget", forms.MultipleHiddenInput)
        kwargs.setdefault("error_messages", {"required": "Select people on the People page first."})
        super().__init__(queryset=Identity.objects.order_by("name"), **kwargs)


class MergeForm(forms.Form):
    """Two people become one; the person whose name is kept is the one that stays."""

    identities = PeopleField()
    keep = forms.ModelChoiceField(
        queryset=Identity.objects.none(),
        widget=forms.RadioSelect,
        label="Keep the name",
        empty_label=None,
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        chosen = self.data.getlist("identities") if self.is_bound else []
        self.fields["keep"].queryset = Identity.objects.filter(pk__in=chosen[:2]).order_by("name")

    def clean_identities(self):
        people = list(self.cleaned_data["identities"])
        if len(people) != 2:
            raise forms.ValidationError("Select exactly two people to merge.")
        return people

    def absorbed(self):
        keep = self.cleaned_data["keep"]
        return next(i for i in self.cleaned_data["identities"] if i.pk != keep.pk)


class DeletePeopleForm(forms.Form):
    identities = PeopleField()


class PhotoSelectionForm(forms.Form):
    """Photos of one person, chosen on their page."""

    images = forms.ModelMultipleChoiceField(
        queryset=None,
        widget=forms.MultipleHiddenInput,
        error_messages={"required": "Select one or more photos first."},
    )

    def __init__(self, identity, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.identity = identity
        self.fields["images"].queryset = identity.images.all()


class SplitForm(PhotoSelectionForm):
    name = forms.CharField(max_length=200, label="Name of the new person")

    def clean_name(self):
        return clean_new_name(self.cleaned_data["name"])


class MoveForm(PhotoSelectionForm):
    target = forms.ModelChoiceField(queryset=Identity.objects.none(), label="Move them to")

    def __init__(self, identity, *args, **kwargs):
        super().__init__(identity, *args, **kwargs)
        self.fields["target"].queryset = Identity.objects.exclude(pk=identity.pk).order_by("name")

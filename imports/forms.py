from django import forms


class ZipImportForm(forms.Form):
    archive = forms.FileField(
        label="Zip file",
        widget=forms.ClearableFileInput(attrs={"accept": ".zip,application/zip"}),
    )

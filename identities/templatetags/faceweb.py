from django import template
from django.urls import reverse

register = template.Library()


@register.filter
def private_url(file):
    """The URL of a stored photo through the view that checks who asks (never the storage's
    own URL, which for object storage would be a link anyone holding it could open)."""
    if not file:
        return ""
    name = file if isinstance(file, str) else file.name  # a FieldFile or a stored name
    return reverse("identities:media", args=[name])

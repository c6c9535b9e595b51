"""Counted nouns for messages: "1 photo", "12 photos" — never "12 photo(s)"."""

from django.utils.translation import ngettext


def photos(n):
    return ngettext("%(n)d photo", "%(n)d photos", n) % {"n": n}


def people(n):
    return ngettext("%(n)d person", "%(n)d people", n) % {"n": n}


def duplicates(n):
    return ngettext("%(n)d duplicate", "%(n)d duplicates", n) % {"n": n}


def faces(n):
    return ngettext("%(n)d face", "%(n)d faces", n) % {"n": n}


def model_versions(n):
    return ngettext("%(n)d model version", "%(n)d model versions", n) % {"n": n}

"""Pages of people management. Each action is chosen on the People page or a person's page
(a GET with the selection), confirmed on a page that says what will happen, and done by
the POST of that page."""

from django.conf import settings
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render

from accounts.roles import EDITOR, role_required

from . import people, quality, wording
from .models import Identity
from .people_forms import DeletePeopleForm, MergeForm, MoveForm, SplitForm


def _selection_error(request, form, field, fallback):
    """Send the user back with the reason when the selection itself is unusable."""
    messages.error(request, form.errors[field][0])
    return redirect(fallback)


@role_required(EDITOR)
def merge(request):
    form = MergeForm(request.POST or request.GET)
    if not form.is_valid() and "identities" in form.errors:
        return _selection_error(request, form, "identities", "identities:list")
    if request.method == "POST" and form.is_valid():
        kept = form.cleaned_data["keep"]
        plan = people.merge_identities(kept, form.absorbed(), request.user)
        messages.success(
            request,
            f"{plan.absorbed.name} was merged into {kept.name}: {wording.photos(plan.moving)} "
            f"moved, {wording.duplicates(plan.duplicates)} kept once.",
        )
        return redirect(kept)
    one, other = form.cleaned_data["identities"]
    choices = [people.plan_merge(one, other), people.plan_merge(other, one)]
    return render(request, "identities/people/merge.html", {"form": form, "choices": choices})


@role_required(EDITOR)
def delete_people(request):
    form = DeletePeopleForm(request.POST or request.GET)
    if not form.is_valid():
        return _selection_error(request, form, "identities", "identities:list")
    chosen = Identity.objects.filter(pk__in=[i.pk for i in form.cleaned_data["identities"]])
    if request.method == "POST":
        photos = people.delete_identities(list(chosen), request.user)
        deleted = wording.people(len(form.cleaned_data["identities"]))
        messages.success(request, f"{deleted} deleted.")
        messages.info(request, f"{wording.photos(photos)} deleted with them.")
        return redirect("identities:list")
    chosen = chosen.with_photo_counts().order_by("name")
    return render(request, "identities/people/delete.html", {"form": form, "people": chosen})


@role_required(EDITOR)
def split(request, slug):
    identity = get_object_or_404(Identity, slug=slug)
    form = SplitForm(identity, request.POST or request.GET)
    if not form.is_valid() and "images" in form.errors:
        return _selection_error(request, form, "images", identity)
    if request.method == "POST" and form.is_valid():
        images = form.cleaned_data["images"]
        created = people.split_photos(identity, images, form.cleaned_data["name"], request.user)
        messages.success(request, f"{wording.photos(len(images))} are now {created.name}'s.")
        return redirect(created)
    context = {"form": form, "identity": identity, "images": form.cleaned_data["images"]}
    context["show_errors"] = request.method == "POST"
    return render(request, "identities/people/split.html", context)


@role_required(EDITOR)
def move(request, slug):
    identity = get_object_or_404(Identity, slug=slug)
    form = MoveForm(identity, request.POST or request.GET)
    if not form.is_valid() and "images" in form.errors:
        return _selection_error(request, form, "images", identity)
    images = list(form.cleaned_data["images"])
    target = form.cleaned_data.get("target")
    if request.method == "POST" and form.is_valid() and "confirm" in request.POST:
        plan = people.move_photos(identity, images, target, request.user)
        messages.success(
            request,
            f"{wording.photos(len(plan.moving))} moved to {target.name}"
            + (
                f"; {len(plan.duplicates)} they already had were removed."
                if plan.duplicates
                else "."
            ),
        )
        return redirect(identity)
    plan = people.plan_move(identity, images, target) if target else None
    context = {"form": form, "identity": identity, "images": images, "plan": plan}
    return render(request, "identities/people/move.html", context)


@role_required(EDITOR)
def data_quality(request):
    report = quality.build_report(settings.FACEWEB_MIN_PHOTOS_PER_IDENTITY)
    return render(request, "identities/people/quality.html", {"report": report})

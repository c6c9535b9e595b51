"""A changed password ends API access too: sessions already end (Django's session auth
hash), but a token would otherwise keep working for whoever had learnt it. The user makes
a new one on their profile page."""

from django.conf import settings
from django.db.models.signals import post_save, pre_save
from django.dispatch import receiver


@receiver(pre_save, sender=settings.AUTH_USER_MODEL)
def note_password_change(sender, instance, raw=False, **kwargs):
    if raw or instance.pk is None:
        return
    old = sender._base_manager.filter(pk=instance.pk).values_list("password", flat=True).first()
    instance._faceweb_password_changed = old is not None and old != instance.password


@receiver(post_save, sender=settings.AUTH_USER_MODEL)
def revoke_token_after_password_change(sender, instance, created=False, **kwargs):
    if created or not getattr(instance, "_faceweb_password_changed", False):
        return
    from rest_framework.authtoken.models import Token

    from . import audit

    instance._faceweb_password_changed = False
    if Token.objects.filter(user=instance).delete()[0]:
        audit.record(instance, "token.revoke", instance, reason="password changed")

"""Recording the audit trail."""

from .models import AuditEvent


def record(actor, action, target=None, **details):
    """Add an event: actor (a user or None for the system) did action to target.

    action is a short verb phrase such as "identity.create" or "training.start".
    """
    user = actor if getattr(actor, "is_authenticated", False) else None
    return AuditEvent.objects.create(
        actor=user,
        actor_name=user.get_username() if user else "",
        action=action,
        target_type=target._meta.model_name if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        target_repr=str(target)[:255] if target is not None else "",
        details=details,
    )

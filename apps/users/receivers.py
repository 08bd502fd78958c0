"""Keep each user's stored state (`apps.users.state`) in step with the database."""

import logging

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from apps.users.models import User
from apps.users.state import refresh_user_state
from realtime.publisher import revoke_live_access

logger = logging.getLogger(__name__)


@receiver(post_save, sender=User, dispatch_uid="users.refresh_state_on_save")
@receiver(post_delete, sender=User, dispatch_uid="users.refresh_state_on_delete")
def refresh_state_after_commit(sender, instance: User, **kwargs) -> None:
    """Once the change commits (at once outside a transaction), store the committed state
    so that the next request of this user sees it, and close the user's open sockets if
    they lost access."""
    user_id = instance.pk  # a deleted instance loses its pk later

    def refresh_state():
        if refresh_user_state(user_id):
            return
        try:
            revoke_live_access([user_id])
        except Exception as exc:  # the relay sends the same notice; never fail the change
            logger.error("Could not close the open sockets of user %s (%s)", user_id, exc)

    transaction.on_commit(refresh_state, robust=True)

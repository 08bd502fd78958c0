"""Reads of users that the API offers to anyone signed in."""

from django.db.models import Q, QuerySet
from django.db.models.functions import Lower

from apps.users.models import User

SEARCH_MAX_RESULTS = 20


def search_users(*, query: str, limit: int = SEARCH_MAX_RESULTS) -> QuerySet:
    """Up to `limit` active users whose username or email starts with `query`, in any
    case, ordered by username, as `{id, username}`: an email may match but is never part
    of the answer. `istartswith` is `UPPER(column) LIKE 'QUERY%'` on PostgreSQL, which
    the prefix indexes of migration users 0003 serve."""
    matches = Q(username__istartswith=query) | Q(email__istartswith=query)
    return (
        User.objects.filter(matches, is_active=True)
        .order_by(Lower("username"))  # unique, so the order is total
        .values("id", "username")[:limit]
    )

from datetime import UTC, datetime


def rfc3339(value: datetime | None) -> str | None:
    """RFC 3339 in UTC with a `Z`, as every timestamp leaves this service."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")

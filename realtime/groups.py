"""Channel-layer group names."""


def user_stream_group(user_id: int) -> str:
    """The group every live connection of one user joins: their event stream."""
    return f"user-stream.{user_id}"

"""The project's own errors: what a service or selector refuses, in the domain's words.

Services raise these, never an HTTP exception; the API's one exception handler
(`apps.common.exceptions.problem_exception_handler`) turns each into its problem+json
response. Each error's `code` is the problem document's `code`.
"""


class DomainError(Exception):
    """A request the domain refuses; `message` is said to the client as it is."""

    code = "error"

    def __init__(self, message: str, *, code: str | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class NotFound(DomainError):
    """The thing does not exist, or the caller may not see it."""

    code = "not_found"


class NotAllowed(DomainError):
    """The caller may see the thing but not do this to it."""

    code = "permission_denied"


class Archived(DomainError):
    """The task (or its project) is archived, and must be restored before it changes."""

    code = "task_archived"


class Conflict(DomainError):
    """The change would break a rule about the current state (the last owner of a
    project leaving it, a project with tasks deleted): 409."""

    code = "conflict"


class StaleVersion(DomainError):
    """The task is no longer at a version the caller named; `current` is how it is now."""

    code = "stale_version"

    def __init__(self, message: str, *, current: dict):
        super().__init__(message)
        self.current = current


class IdempotencyConflict(DomainError):
    """An Idempotency-Key cannot be honoured for this request."""


class IdempotencyKeyInUse(IdempotencyConflict):
    """A concurrent request with the same key has not finished yet."""

    code = "idempotency_key_in_use"


class IdempotencyKeyReused(IdempotencyConflict):
    """The key was used before with a different request."""

    code = "idempotency_key_reused"


class InvalidInput(DomainError):
    """Input that passed its shape checks but breaks a rule of the domain (a taken
    username, say); `errors` maps each field to its messages."""

    code = "invalid"

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("Invalid input.")
        self.errors = errors


class CredentialsRejected(DomainError):
    """The credentials (password or token) do not identify an active account."""

    code = "authentication_failed"

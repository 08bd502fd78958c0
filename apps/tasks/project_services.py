"""Every change to a project or to its members goes through here.

Each public function is one transaction that first locks the project row FOR UPDATE. A
task change takes that row FOR SHARE while it records its event
(`selectors.lock_project_audience`), so a membership change and a task change never
interleave: each event reaches exactly the members of the moment it commits. Then the
function applies the rules (owners and admins manage a project; anyone may leave it),
bumps the project's `version` (its members are part of what it shows: `member_count`,
`my_role`), and records the event (`apps.tasks.events`) last.
"""

from collections.abc import Iterable

from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.common.errors import (
    Archived,
    Conflict,
    InvalidInput,
    NotAllowed,
    NotFound,
    StaleVersion,
)
from apps.tasks import selectors
from apps.tasks.events import record_event
from apps.tasks.models import (
    PROJECT_NAME_CONSTRAINT,
    EventType,
    Membership,
    Project,
    ProjectRole,
    Task,
)
from apps.tasks.representation import member_representation, project_representation
from apps.tasks.services import _violated_constraint
from apps.users.models import User

# The fields a project change may touch; `changes` are keyed by these.
PROJECT_FIELDS = ("name", "description")


@transaction.atomic
def project_create(*, actor: User, data: dict) -> dict:
    """Create a project from validated `data` (name, description), with the actor as
    its first owner; return it as the actor sees it. A name the actor already gave
    another project (in any letter case) is InvalidInput."""
    project = Project(created_by=actor, **data)
    _save_named(project, actor=actor, force_insert=True)
    Membership.objects.create(
        project=project, user=actor, role=ProjectRole.OWNER, added_at=project.created_at
    )
    return project_representation(project, my_role=ProjectRole.OWNER, member_count=1)


@transaction.atomic
def project_update(
    *, project_id, actor: User, data: dict, if_match: frozenset[int] | None = None
) -> dict:
    """Apply validated `data` (name, description) to the project, as an owner or admin,
    and record `project.updated` with what changed; a change that changes nothing is
    not a change (no new version, no event). An archived project changes only once
    restored. Returns the project as the actor sees it."""
    project, role = _lock_project(
        project_id=project_id, actor=actor, if_match=if_match, manage=True
    )
    if project.archived_at is not None:
        raise Archived(
            "The project is archived; restore it before changing it.", code="project_archived"
        )
    changes = {
        field: [getattr(project, field), data[field]]
        for field in PROJECT_FIELDS
        if field in data and getattr(project, field) != data[field]
    }
    if not changes:
        return _as_seen_by(project, role)
    for field, (_old, new) in changes.items():
        setattr(project, field, new)
    project.version += 1
    _save_named(project, actor=actor, update_fields=[*changes, "version", "updated_at"])
    record_event(EventType.PROJECT_UPDATED, actor=actor, project=project, changes=changes)
    return _as_seen_by(project, role)


@transaction.atomic
def project_archive(*, project_id, actor: User, if_match: frozenset[int] | None = None) -> dict:
    """Archive the project, as an owner or admin: its tasks then only read. Archiving an
    archived project changes nothing. Returns the project as the actor sees it."""
    return _set_archived(project_id=project_id, actor=actor, if_match=if_match, archived=True)


@transaction.atomic
def project_restore(*, project_id, actor: User, if_match: frozenset[int] | None = None) -> dict:
    """Bring an archived project back, as an owner or admin; restoring a live project
    changes nothing. Returns the project as the actor sees it."""
    return _set_archived(project_id=project_id, actor=actor, if_match=if_match, archived=False)


def _set_archived(*, project_id, actor: User, if_match, archived: bool) -> dict:
    project, role = _lock_project(
        project_id=project_id, actor=actor, if_match=if_match, manage=True
    )
    if (project.archived_at is not None) == archived:
        return _as_seen_by(project, role)
    project.archived_at = timezone.now() if archived else None
    project.version += 1
    project.save(update_fields=["archived_at", "version", "updated_at"])
    event_type = EventType.PROJECT_ARCHIVED if archived else EventType.PROJECT_RESTORED
    record_event(event_type, actor=actor, project=project)
    return _as_seen_by(project, role)


@transaction.atomic
def project_delete(*, project_id, actor: User, if_match: frozenset[int] | None = None) -> None:
    """Delete the project for good, as an owner or admin, once it has no tasks at all
    (archived ones included; else Conflict). Its members get `project.deleted`."""
    project, _role = _lock_project(
        project_id=project_id, actor=actor, if_match=if_match, manage=True
    )
    # A task being added meanwhile holds a key share lock on the project row, which the
    # lock above waited for: any task is committed and seen here.
    if Task.objects.filter(project_id=project.pk).exists():
        raise Conflict(
            "The project still has tasks (archived ones count too): delete them or move "
            "them out of it first.",
            code="project_has_tasks",
        )
    # Recorded while the members are still there to receive it.
    record_event(EventType.PROJECT_DELETED, actor=actor, project=project)
    project.delete()


@transaction.atomic
def member_add(*, project_id, actor: User, user: User, role: str = ProjectRole.MEMBER) -> dict:
    """Add `user` (an active person) to the project with `role`, as an owner or admin;
    Conflict if they are a member already. They get `member.added` with the others, and
    may get an email about it. Returns the new member."""
    project, _role = _lock_project(project_id=project_id, actor=actor, manage=True)
    if Membership.objects.filter(project=project, user=user).exists():
        raise Conflict(
            f"{user.username} is already a member of this project.", code="already_member"
        )
    membership = Membership.objects.create(
        project=project, user=user, role=role, added_at=timezone.now()
    )
    _bump_version(project)
    member = member_representation(membership)
    record_event(
        EventType.MEMBER_ADDED, actor=actor, project=project, member=member, notify={user.pk}
    )
    return member


@transaction.atomic
def member_update(*, project_id, actor: User, user_id: int, role: str) -> dict:
    """Give a member another role, as an owner or admin. The last owner cannot be
    demoted (Conflict). Giving the role they have changes nothing. Returns the member."""
    project, _role = _lock_project(project_id=project_id, actor=actor, manage=True)
    membership = _membership(project, user_id)
    if membership.role == role:
        return member_representation(membership)
    if membership.role == ProjectRole.OWNER:
        _keep_an_owner(project, "demoted")
    membership.role = role
    membership.save(update_fields=["role"])
    _bump_version(project)
    member = member_representation(membership)
    record_event(EventType.MEMBER_UPDATED, actor=actor, project=project, member=member)
    return member


@transaction.atomic
def member_remove(*, project_id, actor: User, user_id: int) -> None:
    """Remove a member from the project: anyone may remove themself (leave); owners and
    admins may remove anyone. The last owner cannot leave (Conflict). The removed person
    gets this `member.removed` as their last event of the project."""
    project, role = _lock_project(project_id=project_id, actor=actor)
    if user_id != actor.pk and not selectors.can_manage_project(actor, role):
        raise NotAllowed(
            "Only the project's owners or an admin may remove other members; "
            "you may remove yourself."
        )
    membership = _membership(project, user_id)
    if membership.role == ProjectRole.OWNER:
        _keep_an_owner(project, "removed")
    member = member_representation(membership)
    membership.delete()
    _bump_version(project)
    record_event(
        EventType.MEMBER_REMOVED,
        actor=actor,
        project=project,
        member=member,
        extra_recipients={user_id},
    )


def _lock_project(
    *, project_id, actor: User, if_match: frozenset[int] | None = None, manage: bool = False
) -> tuple[Project, str | None]:
    """Lock the project row for this transaction (FOR UPDATE) and return it with the
    actor's role in it (None for an admin outside it). NotFound if the actor cannot see
    it; NotAllowed when `manage` and the actor is no owner or admin; StaleVersion when
    `if_match` (the versions an If-Match header accepts; None for no condition) does
    not hold the current version."""
    project = (
        Project.objects.select_for_update(of=("self",))
        .select_related("created_by")
        .filter(pk=project_id)
        .first()
    )
    role = None
    if project is not None:
        role = selectors.project_role(user_id=actor.pk, project_id=project.pk)
    if project is None or (role is None and not actor.is_admin):
        raise NotFound("No project with this id.")
    if manage and not selectors.can_manage_project(actor, role):
        raise NotAllowed("Only the project's owners or an admin may do this.")
    if if_match is not None and project.version not in if_match:
        raise StaleVersion(
            "The project has changed since the version named in If-Match.",
            current=_as_seen_by(project, role),
        )
    return project, role


def _membership(project: Project, user_id: int) -> Membership:
    membership = (
        Membership.objects.select_related("user").filter(project=project, user_id=user_id).first()
    )
    if membership is None:
        raise NotFound(f"User {user_id} is not a member of this project.")
    return membership


def _keep_an_owner(project: Project, change: str) -> None:
    """Conflict if the project has a single owner: the one about to be `change`d."""
    if selectors.project_owner_count(project_id=project.pk) <= 1:
        raise Conflict(
            f"The last owner of a project cannot be {change}: make someone else an owner first.",
            code="last_owner",
        )


def _bump_version(project: Project) -> None:
    project.version += 1
    project.save(update_fields=["version", "updated_at"])


def _save_named(
    project: Project, *, actor: User, force_insert=False, update_fields: Iterable[str] = ()
) -> None:
    """Save the project; a name its creator already gave another of their projects is
    InvalidInput. In a savepoint, so that the refusal leaves the transaction usable."""
    try:
        with transaction.atomic():
            if force_insert:
                project.save(force_insert=True)
            else:
                project.save(update_fields=list(update_fields))
    except IntegrityError as exc:
        if _violated_constraint(exc) != PROJECT_NAME_CONSTRAINT:
            raise
        creator = "You" if project.created_by_id == actor.pk else project.created_by.username
        have = "have" if creator == "You" else "has"
        raise InvalidInput(
            {
                "name": [
                    f"{creator} already {have} a project named {project.name!r} "
                    "(names must differ in more than letter case)."
                ]
            }
        ) from exc


def _as_seen_by(project: Project, role: str | None) -> dict:
    """The project as someone with `role` in it sees it (`created_by` must be loaded)."""
    member_count = Membership.objects.filter(project=project).count()
    return project_representation(project, my_role=role, member_count=member_count)

from django.urls import path

from apps.tasks.api import comments, projects, views

urlpatterns = [
    path("tasks/", views.TaskListView.as_view(), name="task-list"),
    path("tasks/<str:task_id>/", views.TaskDetailView.as_view(), name="task-detail"),
    path("tasks/<str:task_id>/archive/", views.TaskArchiveView.as_view(), name="task-archive"),
    path("tasks/<str:task_id>/restore/", views.TaskRestoreView.as_view(), name="task-restore"),
    path("tasks/<str:task_id>/history/", views.TaskHistoryView.as_view(), name="task-history"),
    path(
        "tasks/<str:task_id>/comments/",
        comments.CommentListView.as_view(),
        name="comment-list",
    ),
    path(
        "tasks/<str:task_id>/comments/<str:comment_id>/",
        comments.CommentDetailView.as_view(),
        name="comment-detail",
    ),
    path("projects/", projects.ProjectListView.as_view(), name="project-list"),
    path("projects/<str:project_id>/", projects.ProjectDetailView.as_view(), name="project-detail"),
    path(
        "projects/<str:project_id>/archive/",
        projects.ProjectArchiveView.as_view(),
        name="project-archive",
    ),
    path(
        "projects/<str:project_id>/restore/",
        projects.ProjectRestoreView.as_view(),
        name="project-restore",
    ),
    path(
        "projects/<str:project_id>/members/",
        projects.MemberListView.as_view(),
        name="member-list",
    ),
    path(
        "projects/<str:project_id>/members/<str:user_id>/",
        projects.MemberDetailView.as_view(),
        name="member-detail",
    ),
    path("events/", views.EventListView.as_view(), name="event-list"),
]

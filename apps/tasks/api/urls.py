from django.urls import path

from apps.tasks.api import views

urlpatterns = [
    path("tasks/", views.TaskListView.as_view(), name="task-list"),
    path("tasks/<str:task_id>/", views.TaskDetailView.as_view(), name="task-detail"),
    path("tasks/<str:task_id>/archive/", views.TaskArchiveView.as_view(), name="task-archive"),
    path("tasks/<str:task_id>/restore/", views.TaskRestoreView.as_view(), name="task-restore"),
    path("tasks/<str:task_id>/history/", views.TaskHistoryView.as_view(), name="task-history"),
    path("events/", views.EventListView.as_view(), name="event-list"),
]

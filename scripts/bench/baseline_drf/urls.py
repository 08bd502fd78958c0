from django.urls import path

from baseline_drf.views import TaskDetail, TaskList

urlpatterns = [
    path("api/v1/tasks/", TaskList.as_view()),
    path("api/v1/tasks/<uuid:pk>/", TaskDetail.as_view()),
]

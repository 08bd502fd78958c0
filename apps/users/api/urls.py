from django.urls import path

from apps.users.api import views

urlpatterns = [
    path("register/", views.RegisterView.as_view(), name="auth-register"),
    path("login/", views.LoginView.as_view(), name="auth-login"),
    path("refresh/", views.RefreshView.as_view(), name="auth-refresh"),
    path("logout/", views.LogoutView.as_view(), name="auth-logout"),
    path("me/", views.MeView.as_view(), name="auth-me"),
]

# Mounted at /api/v1/users/.
user_urlpatterns = [
    path("", views.UserSearchView.as_view(), name="user-search"),
]

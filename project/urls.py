from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from apps.common import views as common_views
from apps.users.api.urls import user_urlpatterns

urlpatterns = [
    path("", include("apps.web.urls")),
    path("healthz", common_views.healthz, name="healthz"),
    path("readyz", common_views.readyz, name="readyz"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("api/v1/auth/", include("apps.users.api.urls")),
    path("api/v1/users/", include(user_urlpatterns)),
    path("api/v1/", include("apps.tasks.api.urls")),
    # Anything else under /api/ is a problem+json 404, whatever DEBUG says.
    re_path(r"^api/", common_views.api_not_found),
]

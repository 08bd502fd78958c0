"""Project and member endpoints (being built: see issue 13)."""

from apps.common.api import APIView


class ProjectListView(APIView):
    pass


class ProjectDetailView(APIView):
    pass


class ProjectArchiveView(APIView):
    pass


class ProjectRestoreView(APIView):
    pass


class MemberListView(APIView):
    pass


class MemberDetailView(APIView):
    pass

"""Comment endpoints (being built: see issue 13)."""

from apps.common.api import APIView


class CommentListView(APIView):
    pass


class CommentDetailView(APIView):
    pass

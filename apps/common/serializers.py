from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers


class TextField(serializers.CharField):
    """A string field that takes only JSON strings: DRF's CharField would turn 5 into "5"."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


@extend_schema_field({"type": "object", "additionalProperties": True})
class JSONObjectField(serializers.JSONField):
    """A JSON object: described as one in the schema (DRF's JSONField is any value, null
    included); the serializer's own validation refuses anything else."""


class StrictSerializer(serializers.Serializer):
    """Rejects fields the serializer does not know, so a typo is an error, not a no-op.
    Read-only fields are known, so a client may send back what it was given."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)


class ProblemSerializer(serializers.Serializer):
    """RFC 9457 problem details (for the OpenAPI schema)."""

    type = serializers.CharField()
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField()
    code = serializers.CharField(required=False)


class ValidationProblemSerializer(ProblemSerializer):
    # The schema's field shadows Serializer.errors, which nothing reads: this serializer
    # only documents the body, it never validates one.
    errors = serializers.DictField(  # type: ignore[assignment]
        child=serializers.ListField(child=serializers.CharField()),
        help_text="Messages per field; nested fields are joined with dots.",
    )

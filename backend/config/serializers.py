"""Input serializers' shared strictness: an empty form or query value is refused, not skipped."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail

# the fields an empty value is never valid for (booleans keep HTML forms' meaning of empty: false)
_NEVER_BLANK = (serializers.CharField, serializers.ChoiceField, serializers.IntegerField, serializers.FloatField,
                serializers.DateField)


class StrictSerializer(serializers.Serializer):
    """DRF skips an empty value of an optional field sent as a form or query string (`?split=`, a PATCH with
    `name=`) as if it were not sent; here it is a 400 `invalid` naming the field, as it is in JSON, unless the
    field allows blank text."""

    def to_internal_value(self, data: Any) -> Any:
        if hasattr(data, "getlist"):  # a QueryDict: a query string or a form
            errors = {
                name: [ErrorDetail("This field may not be blank.", code="blank")]
                for name, field in self.fields.items()
                if isinstance(field, _NEVER_BLANK) and not field.read_only and not getattr(field, "allow_blank", False)
                and name in data and "" in data.getlist(name)
            }
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)

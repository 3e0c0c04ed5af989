"""Pagination of every list endpoint."""
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import LimitOffsetPagination


class BoundedLimitOffsetPagination(LimitOffsetPagination):
    """``?limit=&offset=`` pages of at most :attr:`max_limit` items.

    A larger ``limit`` is lowered to ``max_limit`` (as DRF does), so a client can never ask the
    database for an unbounded (or integer-overflowing) slice. A ``limit`` below 1, a negative
    ``offset`` or a value that is not an integer answers 400 naming the parameter.
    """

    max_limit = 1000

    def get_limit(self, request):
        raw = request.query_params.get(self.limit_query_param)
        if raw is None or raw == "":
            return self.default_limit
        return self._integer(raw, self.limit_query_param, minimum=1, cap=self.max_limit)

    def get_offset(self, request):
        raw = request.query_params.get(self.offset_query_param)
        if raw is None or raw == "":
            return 0
        return self._integer(raw, self.offset_query_param, minimum=0)

    @staticmethod
    def _integer(raw: str, name: str, *, minimum: int, cap: int | None = None) -> int:
        """``raw`` as an integer >= ``minimum`` (lowered to ``cap``), else a 400."""
        if not (raw.isascii() and raw.isdigit()) or int(raw[:19]) < minimum:
            raise ValidationError({name: [f"Enter an integer of at least {minimum}."]})
        if cap is not None:
            return cap if len(raw) > 18 else min(int(raw), cap)
        if len(raw) > 18:
            raise ValidationError({name: ["Enter a smaller integer."]})
        return int(raw)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.limit_query_param:
                # No maximum: a larger limit is accepted, and lowered to max_limit.
                parameter["schema"].update(minimum=1)
                parameter["description"] = (f"Number of results to return per page (at most "
                                            f"{self.max_limit}: a larger limit is lowered).")
            elif parameter["name"] == self.offset_query_param:
                parameter["schema"].update(minimum=0)
        return parameters

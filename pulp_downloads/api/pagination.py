"""Pagination of every list endpoint."""
from rest_framework.pagination import LimitOffsetPagination


class BoundedLimitOffsetPagination(LimitOffsetPagination):
    """``?limit=&offset=`` pages of at most :attr:`max_limit` items.

    A larger ``limit`` is lowered to ``max_limit`` (as DRF does), so a client can never ask the
    database for an unbounded (or integer-overflowing) slice.
    """

    max_limit = 1000

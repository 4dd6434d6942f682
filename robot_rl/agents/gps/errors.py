"""Errors raised inside guided policy search."""

from __future__ import annotations


class NumericalError(ArithmeticError):
    """A fit, a Riccati pass or a controller produced non-finite or indefinite values.

    The GPS loop catches it, keeps the last good controller, shrinks the step size and
    reports the event in the iteration log; it never lets a NaN reach a controller.
    """

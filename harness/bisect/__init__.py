"""Bisects: which commit (``commits``) and which options (``ddmin`` over ``oracle`` trials) turn
a passing combination into a failing one, and the nightly driver (``nightly``). ``trial`` is the
vocabulary they share: one run of a combination's own checks up to a stage, and what it observed.
"""

"""The Wider Determinants Tracker: public indicators by English area, each tagged with the
Whitehall department that owns the policy, and analysis of where health outcomes go with them."""

from tracker.memory import set_up_allocators

__version__ = "0.1.0"

set_up_allocators()  # in every process of the tracker, before it holds any data (tracker.memory)

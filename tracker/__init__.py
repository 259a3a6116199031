"""The Wider Determinants Tracker: public indicators by English area, each tagged with the
Whitehall department that owns the policy, and analysis of where health outcomes go with them."""

__version__ = "0.1.0"

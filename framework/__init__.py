"""Pluggable active learning for time-series anomaly detection."""

from framework import resolvers

__version__ = "0.1.0"

resolvers.register()

"""Pluggable active learning for time-series anomaly detection."""

from framework import discovery, resolvers

__version__ = "0.1.0"

resolvers.register()
discovery.register_search_path()

"""rating-prediction"""

__version__ = "0.1"

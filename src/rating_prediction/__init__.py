"""rating-prediction"""

from rating_prediction.runtime.library_warnings import ignore_library_warnings

__version__ = "0.1"

ignore_library_warnings()

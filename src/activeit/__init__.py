"""activeit: active instruction tuning (Kung et al., EMNLP 2023) as one installable package.

Score the task pool with the current model, pick the most useful tasks, re-train, evaluate, repeat.
"""

from activeit.errors import ActiveitError

__version__ = "0.1.0"
__all__ = ["ActiveitError", "__version__"]

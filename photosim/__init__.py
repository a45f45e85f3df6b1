"""photosim: find duplicate and similar photos on your own disk.

Importing this package is cheap: it never imports Qt or torch.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]

"""Dataset readers for the real on-disk layouts, and the generator of demo data in those layouts."""
from .common import WSOLSample

__all__ = ["WSOLSample"]

"""Fixes for known breaks of the pinned stack; filled in below."""

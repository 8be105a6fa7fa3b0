"""Task adapters (installed as ``kdzoo.adapters``)."""

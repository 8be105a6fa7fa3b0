"""kdzoo: knowledge distillation across architecture families."""
__version__ = "0.1.0"

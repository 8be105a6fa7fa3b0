"""Model wrappers: the model a DDP (or other MMEngine) wrapper holds."""
from mmengine.model import is_model_wrapper


def unwrap(model):
    """The model inside a DDP (or other MMEngine) wrapper, or the model itself."""
    return model.module if is_model_wrapper(model) else model

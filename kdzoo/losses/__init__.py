"""kdzoo.losses: parameter-free distillation losses, ``forward(student, teacher, **ctx) -> scalar``.

Every loss detaches the teacher, computes in float32 and takes no weight of its own (the weight
lives in the distill item). Importable with torch and mmengine alone. See docs/losses.md.
"""
from .at import ATLoss
from .cwd import CWDLoss
from .dfra import DFRALoss
from .dist import DISTLoss
from .dkd import DKDLoss
from .kd import KDLoss
from .lfcc import LFCCLoss
from .msdcrd import MSDCRDLoss
from .mse import MSELoss
from .ofa import OFALoss
from .pkd import PKDLoss
from .rkd import RKDLoss
from .sdd import SDDLoss

__all__ = ['ATLoss', 'CWDLoss', 'DFRALoss', 'DISTLoss', 'DKDLoss', 'KDLoss', 'LFCCLoss',
           'MSDCRDLoss', 'MSELoss', 'OFALoss', 'PKDLoss', 'RKDLoss', 'SDDLoss']

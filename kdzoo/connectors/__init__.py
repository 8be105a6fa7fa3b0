"""kdzoo.connectors: learnable modules between student taps and losses (student side only)."""
from .msdf import MSDFusion
from .projector import Projector
from .stage_branch import StageBranch

__all__ = ['MSDFusion', 'Projector', 'StageBranch']

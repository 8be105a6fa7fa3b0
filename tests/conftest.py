"""pytest configuration: tests/ is on sys.path (pytest's prepend import mode), so tests import
shared tiny models with ``from helpers import ...``."""
import warnings

warnings.filterwarnings('ignore', message='.*Could not import OneDL.*')

import torch

# Tiny models are fastest on one thread, and do not slow down 10x when another process is busy.
torch.set_num_threads(1)

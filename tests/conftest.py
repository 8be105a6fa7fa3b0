"""pytest configuration: tests/ is on sys.path (pytest's prepend import mode), so tests import
shared tiny models with ``from helpers import ...``."""
import warnings

warnings.filterwarnings('ignore', message='.*Could not import OneDL.*')

"""tvae: variational autoencoders with spatial-transformer decoders (Vivé 2017), reproduced."""

from .config import DATASETS, MODELS, PRIORS, Config
from .errors import CheckpointError, ConfigError, DataError, DeviceError, TrainingError, TVAEError
from .models import DTVAE, TVAE, VAE, build_model, count_parameters
from .profiles import PROFILES, Profile, resolve

__all__ = ["Config", "MODELS", "PRIORS", "DATASETS", "VAE", "TVAE", "DTVAE", "build_model",
           "count_parameters", "TVAEError", "ConfigError", "DataError", "CheckpointError",
           "DeviceError", "TrainingError", "PROFILES", "Profile", "resolve"]
__version__ = "0.1.0"

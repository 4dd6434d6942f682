"""robot_rl: sim-to-real robot learning and model-based control on MuJoCo and PyBullet.

The public entry points are re-exported here; each subpackage keeps its own public names in
its ``__init__``. Importing ``robot_rl`` does not import torch: the envs run without it.
"""

from robot_rl.envs import Engine, make, registered_envs

__version__ = "0.1.0"

__all__ = ["Engine", "__version__", "make", "registered_envs"]

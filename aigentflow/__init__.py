"""aigentflow: teams of AI agents carrying a feature request to reviewed, merged code.

Importing this package is cheap on purpose: no Ray, no litellm, no pydantic models beyond what a
command asks for. Heavy modules are imported by the commands that need them.
"""

import os as _os

__version__ = "0.1.0"

# litellm must never fetch its cost map from the network. Every process that runs aigentflow code
# (the CLI, Ray workers unpickling an agent or a call) imports this package before litellm, so this
# one line covers them all; a Ray runtime_env would do the same but makes each actor's worker start
# about 0.4 s slower (a separate worker pool per runtime env).
_os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

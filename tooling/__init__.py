"""Local tooling: Pleo simulator, local stack, demo, robustness table.

The deployed layout puts the core (`layers/scope_core`) and the handler
(`functions/scope_job`) on the Lambda's path; the same two folders are put on this
interpreter's path here, so that every `python -m tooling.<tool>` finds them.
"""

import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent
for _folder in (_ROOT / "layers" / "scope_core", _ROOT / "functions" / "scope_job"):
    if str(_folder) not in sys.path:
        sys.path.insert(0, str(_folder))

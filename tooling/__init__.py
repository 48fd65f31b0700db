"""The project's tooling, in four rooms and the simulator:

- `testkit/`: the local stand-ins the tests, the demo and the tools run on (moto's server and
  its patches, the template's resources created in it, the whole product wired to them, Step
  Functions executions followed, a Lambda-like interpreter for the built artifact);
- `reports/`: the generated tables of docs/ (robustness matrix, chaos soak) and their one
  writer;
- `ops/`: the operator CLI, `pleo-scope-ops`;
- `build/`: the template reader, `sam build` with the layer's checks, statelint on the ASL;
- `pleo_sim/`: a local stand-in for Pleo's export-jobs API.

The deployed layout puts the core (`layers/scope_core`) and the handler
(`functions/scope_job`) on the Lambda's path; the same two folders are put on this
interpreter's path here, so that every `python -m tooling.<tool>` finds them.
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the repository
for _folder in (ROOT / "layers" / "scope_core", ROOT / "functions" / "scope_job"):
    if str(_folder) not in sys.path:
        sys.path.insert(0, str(_folder))

"""A local AWS for the operator's tests: moto in server mode, plus what the operator needs.

moto answers every AWS API the operator uses, but its RDS makes everything available at once,
ignores pagination, rejects ARNs where AWS accepts them and lacks some validation. This
package runs moto's server behind a WSGI middleware and patches moto's RDS in that process:

- `rds_lifecycle`: statuses that take time (creating, copying, deleting, ...),
- `arns`, `pagination`, `validation`, `automated_backups`: AWS behaviour moto lacks,
- `calls`, `faults`, `control_api`: a request log, injected errors and the `/_sim/` API.

Tests use `SimulatorProcess` (a child process) and `SimulatorClient` (the control API); both
import only the standard library. See docs/simulator.md.
"""

from .client import SimulatorApiError, SimulatorClient
from .process import SimulatorProcess, SimulatorStartError

__all__ = ["SimulatorApiError", "SimulatorClient", "SimulatorProcess", "SimulatorStartError"]

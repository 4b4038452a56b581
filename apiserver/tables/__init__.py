"""`kubectl get` tables: the columns a real cluster prints for each kind.

kubectl asks the API server for `meta.k8s.io/v1` Tables and prints the cells it gets,
so the server computes them exactly as Kubernetes 1.32's printers do. Public API:

- `printer_for(group, kind)` -> `Printer` for a built-in kind (default NAME / CREATED AT
  for kinds Kubernetes prints generically);
- `crd_printer(additional_printer_columns)` -> `Printer` for a custom resource version;
- `Printer.columns` (columnDefinitions) and `Printer.cells(obj, now)` (one row);
- `build_table(printer, objects, ...)` -> the Table JSON for a list, get or watch event;
- `human_duration` / `short_human_duration`, the AGE formats.

Modules: one per API group family (`pods`, `core`, `events`, `apps`, `batch`,
`autoscaling`, `networking`, `storage`, `cluster`, `admission`), `crd` with `jsonpath`
for custom resources, shared `cells`, `duration` and `quantity` formatting.
"""

from apiserver.tables.crd import crd_printer
from apiserver.tables.duration import human_duration, short_human_duration
from apiserver.tables.printer import Printer, default_printer
from apiserver.tables.registry import has_printer, printer_for
from apiserver.tables.table import build_table, partial_object_metadata

__all__ = [
    "Printer",
    "build_table",
    "crd_printer",
    "default_printer",
    "has_printer",
    "human_duration",
    "partial_object_metadata",
    "printer_for",
    "short_human_duration",
]

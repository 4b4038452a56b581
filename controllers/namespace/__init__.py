"""The namespace controller: empties Terminating namespaces, reports progress in status conditions (conditions.py) and finalizes them (controller.py)."""

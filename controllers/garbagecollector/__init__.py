"""The garbage collector: ownerReferences-driven cascading deletion (controller.py), its dependency graph (graph.py) and the API discovery it shares with the namespace controller (discovery.py)."""

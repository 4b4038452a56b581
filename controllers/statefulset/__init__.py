"""The StatefulSet controller: ordered, stably named pods with their own claims.

identity.py (names, labels, claims of one ordinal), retention.py (claim owner references),
revisions.py (template snapshots), podcontrol.py (API calls and Events), sync.py (one
sync), controller.py (informers and queue).
"""

from controllers.statefulset.controller import StatefulSetController

__all__ = ["StatefulSetController"]

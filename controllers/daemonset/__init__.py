"""The DaemonSet controller: one pod per eligible node, rolled by ControllerRevisions."""

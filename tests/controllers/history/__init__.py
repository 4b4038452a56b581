"""ControllerRevision history helpers (controllers/history)."""

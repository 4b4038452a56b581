"""Pod volumes on a real node: emptyDir, configMap, secret, downwardAPI, projected,
hostPath and persistentVolumeClaim, in the kubelet's directory layout (see manager.py),
and the volumeMounts that put them into containers (subpath.py)."""

from kubelet.volumes.manager import VolumeError, VolumeManager
from kubelet.volumes.payload import TokenSource

__all__ = ["TokenSource", "VolumeError", "VolumeManager"]

"""PersistentVolumes: the PV/PVC binder (persistentvolume-binder-controller) and the
local-path dynamic provisioner (rancher.io/local-path, as kind ships it)."""

"""Pod networking modelled on the CNI specification 1.0: plugins (in-process objects or
real plugin binaries), the libcni-style chain runner, host-local IPAM, the loopback pod
network mode, and the NetworkManager facade the kubelet uses."""

from cni.config import NetworkConfigList, RuntimeConf
from cni.invoke import ExecPlugin, Plugin, PluginRegistry
from cni.libcni import CNIConfig
from cni.manager import NetworkManager, NetworkPlugin, PodNetwork
from cni.types import DNS, CNIError, Interface, IPConfig, Result, Route

__all__ = ["CNIConfig", "CNIError", "DNS", "ExecPlugin", "IPConfig", "Interface", "NetworkConfigList",
           "NetworkManager", "NetworkPlugin", "Plugin", "PluginRegistry", "PodNetwork", "Result", "Route", "RuntimeConf"]

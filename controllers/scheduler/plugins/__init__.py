"""The default scheduling profile of Kubernetes 1.32, plugin by plugin.

Order matters: filters run in this order and the first failure is the reason a node is
counted under in the FailedScheduling message. Weights are the default profile's
(pkg/scheduler/apis/config/v1/default_plugins.go): TaintToleration 3, NodeAffinity 2,
PodTopologySpread 2, InterPodAffinity 2, NodeResourcesFit 1,
NodeResourcesBalancedAllocation 1, ImageLocality 1. Not modelled: SchedulingGates,
VolumeRestrictions, NodeVolumeLimits, VolumeZone, DynamicResources.
"""

from __future__ import annotations

import random

from controllers.scheduler.framework import Framework, Plugin
from controllers.scheduler.plugins.basic import NodeName, NodePorts, NodeUnschedulable
from controllers.scheduler.plugins.defaultpreemption import DefaultPreemption
from controllers.scheduler.plugins.imagelocality import ImageLocality
from controllers.scheduler.plugins.interpodaffinity import InterPodAffinity
from controllers.scheduler.plugins.nodeaffinity import NodeAffinity
from controllers.scheduler.plugins.noderesources import NodeResourcesBalancedAllocation, NodeResourcesFit
from controllers.scheduler.plugins.podtopologyspread import PodTopologySpread
from controllers.scheduler.plugins.tainttoleration import TaintToleration
from controllers.scheduler.plugins.volumebinding import VolumeBinding

DEFAULT_WEIGHTS: dict[str, int] = {
    "TaintToleration": 3,
    "NodeAffinity": 2,
    "NodeResourcesFit": 1,
    "PodTopologySpread": 2,
    "InterPodAffinity": 2,
    "NodeResourcesBalancedAllocation": 1,
    "ImageLocality": 1,
}

__all__ = ["DEFAULT_WEIGHTS", "default_plugins", "default_framework", "DefaultPreemption", "ImageLocality",
           "InterPodAffinity", "NodeAffinity", "NodeName", "NodePorts", "NodeResourcesBalancedAllocation",
           "NodeResourcesFit", "NodeUnschedulable", "PodTopologySpread", "TaintToleration", "VolumeBinding"]


def default_plugins(*, preemption: bool = True, image_locality: bool = True) -> list[Plugin]:
    """Fresh plugin instances in the default profile's order."""
    plugins: list[Plugin] = [
        NodeUnschedulable(), NodeName(), TaintToleration(), NodeAffinity(), NodePorts(),
        NodeResourcesFit(), VolumeBinding(), PodTopologySpread(), InterPodAffinity(),
    ]
    if preemption:
        plugins.append(DefaultPreemption())
    plugins.append(NodeResourcesBalancedAllocation())
    if image_locality:
        plugins.append(ImageLocality())
    return plugins


def default_framework(*, rng: random.Random | None = None, preemption: bool = True,
                      image_locality: bool = True, percentage_of_nodes_to_score: int = 0) -> Framework:
    """The `default-scheduler` profile."""
    return Framework(default_plugins(preemption=preemption, image_locality=image_locality),
                     weights=DEFAULT_WEIGHTS, rng=rng, percentage_of_nodes_to_score=percentage_of_nodes_to_score)

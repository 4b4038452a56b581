"""ImageLocality (weight 1): prefer nodes that already have the pod's images, weighted
by image size and by how widely the image is spread (an image on every node says
little). Sizes come from node.status.images; a missing tag means ":latest"."""

from __future__ import annotations

from controllers.scheduler.framework import MAX_NODE_SCORE, CycleState, Pod
from controllers.scheduler.nodeinfo import NodeInfo
from controllers.scheduler.plugins.helper import NODE_CHANGES

MB = 1024 * 1024
MIN_THRESHOLD = 23 * MB
MAX_CONTAINER_THRESHOLD = 1000 * MB


def normalized_image_name(name: str) -> str:
    """normalizedImageName: add ":latest" when the last path segment has no tag."""
    if name.rfind(":") <= name.rfind("/"):
        name += ":latest"
    return name


def calculate_priority(sum_scores: int, num_containers: int) -> int:
    max_threshold = MAX_CONTAINER_THRESHOLD * num_containers
    sum_scores = min(max(sum_scores, MIN_THRESHOLD), max_threshold)
    return MAX_NODE_SCORE * (sum_scores - MIN_THRESHOLD) // (max_threshold - MIN_THRESHOLD)


class ImageLocality:
    """Score by the images already present on the node."""

    name = "ImageLocality"
    events = NODE_CHANGES

    def score_nodes(self, state: CycleState, pod: Pod, nodes: list[NodeInfo]) -> list[int]:
        """`score` for each node; nodes reporting no images score 0 without a call."""
        return [self.score(state, pod, node) if node.image_states else 0 for node in nodes]

    def score(self, state: CycleState, pod: Pod, node: NodeInfo) -> int:
        if not node.image_states:
            return 0   # calculate_priority(0, n) is 0: nothing below the minimum threshold counts
        images = state.pod_info(pod).images
        total_nodes = len(state.snapshot.node_infos)
        total = 0
        for name in images:
            image = node.image_states.get(normalized_image_name(name))
            if image is not None and total_nodes:
                total += int(image.size * (image.num_nodes / total_nodes))
        return calculate_priority(total, len(images)) if images else 0

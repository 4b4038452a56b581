"""`printer_for(group, kind)`: which Printer Kubernetes 1.32 uses for a built-in kind.

Kinds Kubernetes registers a printer for get it; every other built-in kind (Role,
ClusterRole, LimitRange, CustomResourceDefinition, APIService, TokenReview...) gets the
apiserver's default convertor, NAME and CREATED AT. Printers are built on first use and
shared: they are immutable. Custom resources use `crd.crd_printer` instead.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from apiserver.tables import (
    admission,
    apps,
    autoscaling,
    batch,
    cluster,
    core,
    events,
    networking,
    storage,
    volumes,
)
from apiserver.tables.pods import pod_printer
from apiserver.tables.printer import Printer, default_printer

_FACTORIES: dict[tuple[str, str], Callable[[], Printer]] = {
    ("", "Pod"): pod_printer,
    ("", "Namespace"): core.namespace_printer,
    ("", "Service"): core.service_printer,
    ("", "Endpoints"): core.endpoints_printer,
    ("", "ConfigMap"): core.configmap_printer,
    ("", "Secret"): core.secret_printer,
    ("", "ServiceAccount"): core.serviceaccount_printer,
    ("", "Node"): core.node_printer,
    ("", "Event"): events.event_printer,
    ("", "PersistentVolume"): volumes.pv_printer,
    ("", "PersistentVolumeClaim"): volumes.pvc_printer,
    ("", "ResourceQuota"): core.resourcequota_printer,
    ("", "ReplicationController"): core.replicationcontroller_printer,
    ("", "PodTemplate"): core.podtemplate_printer,
    ("", "ComponentStatus"): core.componentstatus_printer,
    ("apps", "Deployment"): apps.deployment_printer,
    ("apps", "ReplicaSet"): apps.replicaset_printer,
    ("apps", "StatefulSet"): apps.statefulset_printer,
    ("apps", "DaemonSet"): apps.daemonset_printer,
    ("apps", "ControllerRevision"): apps.controllerrevision_printer,
    ("batch", "Job"): batch.job_printer,
    ("batch", "CronJob"): batch.cronjob_printer,
    ("autoscaling", "HorizontalPodAutoscaler"): autoscaling.hpa_printer,
    ("networking.k8s.io", "Ingress"): networking.ingress_printer,
    ("networking.k8s.io", "IngressClass"): networking.ingressclass_printer,
    ("networking.k8s.io", "NetworkPolicy"): networking.networkpolicy_printer,
    ("networking.k8s.io", "ServiceCIDR"): networking.servicecidr_printer,
    ("networking.k8s.io", "IPAddress"): networking.ipaddress_printer,
    ("discovery.k8s.io", "EndpointSlice"): networking.endpointslice_printer,
    ("events.k8s.io", "Event"): events.event_printer,
    ("rbac.authorization.k8s.io", "RoleBinding"): cluster.rolebinding_printer,
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): cluster.clusterrolebinding_printer,
    ("policy", "PodDisruptionBudget"): cluster.pdb_printer,
    ("coordination.k8s.io", "Lease"): cluster.lease_printer,
    ("coordination.k8s.io", "LeaseCandidate"): cluster.leasecandidate_printer,
    ("scheduling.k8s.io", "PriorityClass"): cluster.priorityclass_printer,
    ("node.k8s.io", "RuntimeClass"): cluster.runtimeclass_printer,
    ("certificates.k8s.io", "CertificateSigningRequest"): cluster.csr_printer,
    ("certificates.k8s.io", "ClusterTrustBundle"): cluster.clustertrustbundle_printer,
    ("flowcontrol.apiserver.k8s.io", "FlowSchema"): cluster.flowschema_printer,
    ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration"): cluster.prioritylevel_printer,
    ("storage.k8s.io", "StorageClass"): storage.storageclass_printer,
    ("storage.k8s.io", "VolumeAttachment"): storage.volumeattachment_printer,
    ("storage.k8s.io", "CSIDriver"): storage.csidriver_printer,
    ("storage.k8s.io", "CSINode"): storage.csinode_printer,
    ("storage.k8s.io", "CSIStorageCapacity"): storage.csistoragecapacity_printer,
    ("storage.k8s.io", "VolumeAttributesClass"): storage.volumeattributesclass_printer,
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"): admission.webhook_configuration_printer,
    (
        "admissionregistration.k8s.io",
        "ValidatingWebhookConfiguration",
    ): admission.webhook_configuration_printer,
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"): lambda: admission.policy_printer(
        "validations"
    ),
    ("admissionregistration.k8s.io", "MutatingAdmissionPolicy"): lambda: admission.policy_printer(
        "mutations"
    ),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding"): admission.policy_binding_printer,
    ("admissionregistration.k8s.io", "MutatingAdmissionPolicyBinding"): admission.policy_binding_printer,
}


def has_printer(group: str, kind: str) -> bool:
    """Whether Kubernetes registers a dedicated printer for this built-in kind."""
    return (_normalize(group), kind) in _FACTORIES


def _normalize(group: str) -> str:
    return "" if group in ("core", "v1") else group


def printer_for(group: str, kind: str) -> Printer:
    """The Printer for a built-in kind; the default NAME / CREATED AT one when
    Kubernetes has none for it. `group` is "" (or "core") for the core API."""
    return _printer(_normalize(group), kind)


@functools.cache
def _printer(group: str, kind: str) -> Printer:
    factory = _FACTORIES.get((group, kind))
    return factory() if factory else default_printer()

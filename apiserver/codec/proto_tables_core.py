"""Field tables for k8s.io/api/core/v1 messages reachable from the kinds kubectl sends as protobuf.

Each entry maps a message name to its fields in the compact form parsed by
`proto_messages.parse_fields`: `jsonName=number:type` plus flags (`*` repeated, `{T}` map of
string to T, `!` keep zero values / emit null, `^` inline the embedded struct into its parent).
Numbers are the protobuf tags of k8s.io/api core/v1 (generated.proto, types.go struct tags).
The whole PodTemplateSpec/PodSpec/Container tree is here, plus Namespace, ConfigMap, Secret,
Service, ServiceAccount, ResourceQuota and Pod.
"""

CORE_V1: dict[str, str] = {
    "Volume": "name=1:s!, volumeSource=2:VolumeSource^",
    "VolumeSource": (
        "hostPath=1:HostPathVolumeSource, emptyDir=2:EmptyDirVolumeSource, "
        "gcePersistentDisk=3:GCEPersistentDiskVolumeSource, "
        "awsElasticBlockStore=4:AWSElasticBlockStoreVolumeSource, gitRepo=5:GitRepoVolumeSource, "
        "secret=6:SecretVolumeSource, nfs=7:NFSVolumeSource, iscsi=8:ISCSIVolumeSource, "
        "glusterfs=9:GlusterfsVolumeSource, "
        "persistentVolumeClaim=10:PersistentVolumeClaimVolumeSource, rbd=11:RBDVolumeSource, "
        "flexVolume=12:FlexVolumeSource, cinder=13:CinderVolumeSource, "
        "cephfs=14:CephFSVolumeSource, flocker=15:FlockerVolumeSource, "
        "downwardAPI=16:DownwardAPIVolumeSource, fc=17:FCVolumeSource, "
        "azureFile=18:AzureFileVolumeSource, configMap=19:ConfigMapVolumeSource, "
        "vsphereVolume=20:VsphereVirtualDiskVolumeSource, quobyte=21:QuobyteVolumeSource, "
        "azureDisk=22:AzureDiskVolumeSource, "
        "photonPersistentDisk=23:PhotonPersistentDiskVolumeSource, "
        "portworxVolume=24:PortworxVolumeSource, scaleIO=25:ScaleIOVolumeSource, "
        "projected=26:ProjectedVolumeSource, storageos=27:StorageOSVolumeSource, "
        "csi=28:CSIVolumeSource, ephemeral=29:EphemeralVolumeSource, image=30:ImageVolumeSource"
    ),
    "PersistentVolumeClaimVolumeSource": "claimName=1:s!, readOnly=2:b",
    "PersistentVolumeClaimSpec": (
        "accessModes=1:s*, selector=4:LabelSelector, resources=2:VolumeResourceRequirements, "
        "volumeName=3:s, storageClassName=5:s!, volumeMode=6:s!, "
        "dataSource=7:TypedLocalObjectReference, dataSourceRef=8:TypedObjectReference, "
        "volumeAttributesClassName=9:s!"
    ),
    "TypedObjectReference": "apiGroup=1:s!, kind=2:s!, name=3:s!, namespace=4:s!",
    "HostPathVolumeSource": "path=1:s!, type=2:s!",
    "EmptyDirVolumeSource": "medium=1:s, sizeLimit=2:Quantity",
    "GlusterfsVolumeSource": "endpoints=1:s!, path=2:s!, readOnly=3:b",
    "RBDVolumeSource": (
        "monitors=1:s*!, image=2:s!, fsType=3:s, pool=4:s, user=5:s, keyring=6:s, "
        "secretRef=7:LocalObjectReference, readOnly=8:b"
    ),
    "CinderVolumeSource": "volumeID=1:s!, fsType=2:s, readOnly=3:b, secretRef=4:LocalObjectReference",
    "CephFSVolumeSource": (
        "monitors=1:s*!, path=2:s, user=3:s, secretFile=4:s, secretRef=5:LocalObjectReference, "
        "readOnly=6:b"
    ),
    "FlockerVolumeSource": "datasetName=1:s, datasetUUID=2:s",
    "GCEPersistentDiskVolumeSource": "pdName=1:s!, fsType=2:s, partition=3:i, readOnly=4:b",
    "QuobyteVolumeSource": "registry=1:s!, volume=2:s!, readOnly=3:b, user=4:s, group=5:s, tenant=6:s",
    "FlexVolumeSource": "driver=1:s!, fsType=2:s, secretRef=3:LocalObjectReference, readOnly=4:b, options=5:{s}",
    "AWSElasticBlockStoreVolumeSource": "volumeID=1:s!, fsType=2:s, partition=3:i, readOnly=4:b",
    "GitRepoVolumeSource": "repository=1:s!, revision=2:s, directory=3:s",
    "SecretVolumeSource": "secretName=1:s, items=2:KeyToPath*, defaultMode=3:i!, optional=4:b!",
    "SecretProjection": "localObjectReference=1:LocalObjectReference^, items=2:KeyToPath*, optional=4:b!",
    "NFSVolumeSource": "server=1:s!, path=2:s!, readOnly=3:b",
    "ISCSIVolumeSource": (
        "targetPortal=1:s!, iqn=2:s!, lun=3:i!, iscsiInterface=4:s, fsType=5:s, readOnly=6:b, "
        "portals=7:s*, chapAuthDiscovery=8:b, chapAuthSession=11:b, "
        "secretRef=10:LocalObjectReference, initiatorName=12:s!"
    ),
    "FCVolumeSource": "targetWWNs=1:s*, lun=2:i!, fsType=3:s, readOnly=4:b, wwids=5:s*",
    "AzureFileVolumeSource": "secretName=1:s!, shareName=2:s!, readOnly=3:b",
    "VsphereVirtualDiskVolumeSource": "volumePath=1:s!, fsType=2:s, storagePolicyName=3:s, storagePolicyID=4:s",
    "PhotonPersistentDiskVolumeSource": "pdID=1:s!, fsType=2:s",
    "AzureDiskVolumeSource": "diskName=1:s!, diskURI=2:s!, cachingMode=3:s!, fsType=4:s!, readOnly=5:b!, kind=6:s!",
    "PortworxVolumeSource": "volumeID=1:s!, fsType=2:s, readOnly=3:b",
    "ScaleIOVolumeSource": (
        "gateway=1:s!, system=2:s!, secretRef=3:LocalObjectReference!, sslEnabled=4:b, "
        "protectionDomain=5:s, storagePool=6:s, storageMode=7:s, volumeName=8:s, fsType=9:s, "
        "readOnly=10:b"
    ),
    "StorageOSVolumeSource": (
        "volumeName=1:s, volumeNamespace=2:s, fsType=3:s, readOnly=4:b, "
        "secretRef=5:LocalObjectReference"
    ),
    "ConfigMapVolumeSource": (
        "localObjectReference=1:LocalObjectReference^, items=2:KeyToPath*, defaultMode=3:i!, "
        "optional=4:b!"
    ),
    "ConfigMapProjection": "localObjectReference=1:LocalObjectReference^, items=2:KeyToPath*, optional=4:b!",
    "ServiceAccountTokenProjection": "audience=1:s, expirationSeconds=2:l!, path=3:s!",
    "ClusterTrustBundleProjection": "name=1:s!, signerName=2:s!, labelSelector=3:LabelSelector, optional=5:b!, path=4:s!",
    "ProjectedVolumeSource": "sources=1:VolumeProjection*!, defaultMode=2:i!",
    "VolumeProjection": (
        "secret=1:SecretProjection, downwardAPI=2:DownwardAPIProjection, "
        "configMap=3:ConfigMapProjection, serviceAccountToken=4:ServiceAccountTokenProjection, "
        "clusterTrustBundle=5:ClusterTrustBundleProjection"
    ),
    "KeyToPath": "key=1:s!, path=2:s!, mode=3:i!",
    "CSIVolumeSource": (
        "driver=1:s!, readOnly=2:b!, fsType=3:s!, volumeAttributes=4:{s}, "
        "nodePublishSecretRef=5:LocalObjectReference"
    ),
    "EphemeralVolumeSource": "volumeClaimTemplate=1:PersistentVolumeClaimTemplate",
    "PersistentVolumeClaimTemplate": "metadata=1:ObjectMeta, spec=2:PersistentVolumeClaimSpec",
    "ContainerPort": "name=1:s, hostPort=2:i, containerPort=3:i!, protocol=4:s, hostIP=5:s",
    "VolumeMount": (
        "name=1:s!, readOnly=2:b, mountPath=3:s!, subPath=4:s, mountPropagation=5:s!, "
        "subPathExpr=6:s, recursiveReadOnly=7:s!"
    ),
    "VolumeDevice": "name=1:s!, devicePath=2:s!",
    "EnvVar": "name=1:s!, value=2:s, valueFrom=3:EnvVarSource",
    "EnvVarSource": (
        "fieldRef=1:ObjectFieldSelector, resourceFieldRef=2:ResourceFieldSelector, "
        "configMapKeyRef=3:ConfigMapKeySelector, secretKeyRef=4:SecretKeySelector"
    ),
    "ObjectFieldSelector": "apiVersion=1:s, fieldPath=2:s!",
    "ResourceFieldSelector": "containerName=1:s, resource=2:s!, divisor=3:Quantity",
    "ConfigMapKeySelector": "localObjectReference=1:LocalObjectReference^, key=2:s!, optional=3:b!",
    "SecretKeySelector": "localObjectReference=1:LocalObjectReference^, key=2:s!, optional=3:b!",
    "EnvFromSource": "prefix=1:s, configMapRef=2:ConfigMapEnvSource, secretRef=3:SecretEnvSource",
    "ConfigMapEnvSource": "localObjectReference=1:LocalObjectReference^, optional=2:b!",
    "SecretEnvSource": "localObjectReference=1:LocalObjectReference^, optional=2:b!",
    "HTTPHeader": "name=1:s!, value=2:s!",
    "HTTPGetAction": "path=1:s, port=2:IntOrString, host=3:s, scheme=4:s, httpHeaders=5:HTTPHeader*",
    "TCPSocketAction": "port=1:IntOrString, host=2:s",
    "GRPCAction": "port=1:i!, service=2:s!",
    "ExecAction": "command=1:s*",
    "SleepAction": "seconds=1:l!",
    "Probe": (
        "handler=1:ProbeHandler^, initialDelaySeconds=2:i, timeoutSeconds=3:i, periodSeconds=4:i, "
        "successThreshold=5:i, failureThreshold=6:i, terminationGracePeriodSeconds=7:l!"
    ),
    "ContainerResizePolicy": "resourceName=1:s!, restartPolicy=2:s!",
    "Capabilities": "add=1:s*, drop=2:s*",
    "ResourceRequirements": "limits=1:{Quantity}, requests=2:{Quantity}, claims=3:ResourceClaim*",
    "VolumeResourceRequirements": "limits=1:{Quantity}, requests=2:{Quantity}",
    "ResourceClaim": "name=1:s!, request=2:s",
    "Container": (
        "name=1:s!, image=2:s, command=3:s*, args=4:s*, workingDir=5:s, ports=6:ContainerPort*, "
        "envFrom=19:EnvFromSource*, env=7:EnvVar*, resources=8:ResourceRequirements, "
        "resizePolicy=23:ContainerResizePolicy*, restartPolicy=24:s!, volumeMounts=9:VolumeMount*, "
        "volumeDevices=21:VolumeDevice*, livenessProbe=10:Probe, readinessProbe=11:Probe, "
        "startupProbe=22:Probe, lifecycle=12:Lifecycle, terminationMessagePath=13:s, "
        "terminationMessagePolicy=20:s, imagePullPolicy=14:s, securityContext=15:SecurityContext, "
        "stdin=16:b, stdinOnce=17:b, tty=18:b"
    ),
    "ProbeHandler": (
        "exec=1:ExecAction, httpGet=2:HTTPGetAction, tcpSocket=3:TCPSocketAction, "
        "grpc=4:GRPCAction"
    ),
    "LifecycleHandler": (
        "exec=1:ExecAction, httpGet=2:HTTPGetAction, tcpSocket=3:TCPSocketAction, "
        "sleep=4:SleepAction"
    ),
    "Lifecycle": "postStart=1:LifecycleHandler, preStop=2:LifecycleHandler, stopSignal=3:s!",
    "NodeSelector": "nodeSelectorTerms=1:NodeSelectorTerm*!",
    "NodeSelectorTerm": "matchExpressions=1:NodeSelectorRequirement*, matchFields=2:NodeSelectorRequirement*",
    "NodeSelectorRequirement": "key=1:s!, operator=2:s!, values=3:s*",
    "Affinity": (
        "nodeAffinity=1:NodeAffinity, podAffinity=2:PodAffinity, "
        "podAntiAffinity=3:PodAntiAffinity"
    ),
    "PodAffinity": (
        "requiredDuringSchedulingIgnoredDuringExecution=1:PodAffinityTerm*, "
        "preferredDuringSchedulingIgnoredDuringExecution=2:WeightedPodAffinityTerm*"
    ),
    "PodAntiAffinity": (
        "requiredDuringSchedulingIgnoredDuringExecution=1:PodAffinityTerm*, "
        "preferredDuringSchedulingIgnoredDuringExecution=2:WeightedPodAffinityTerm*"
    ),
    "WeightedPodAffinityTerm": "weight=1:i!, podAffinityTerm=2:PodAffinityTerm",
    "PodAffinityTerm": (
        "labelSelector=1:LabelSelector, namespaces=2:s*, topologyKey=3:s!, "
        "namespaceSelector=4:LabelSelector, matchLabelKeys=5:s*, mismatchLabelKeys=6:s*"
    ),
    "NodeAffinity": (
        "requiredDuringSchedulingIgnoredDuringExecution=1:NodeSelector, "
        "preferredDuringSchedulingIgnoredDuringExecution=2:PreferredSchedulingTerm*"
    ),
    "PreferredSchedulingTerm": "weight=1:i!, preference=2:NodeSelectorTerm",
    "Toleration": "key=1:s, operator=2:s, value=3:s, effect=4:s, tolerationSeconds=5:l!",
    "PodReadinessGate": "conditionType=1:s!",
    "PodSpec": (
        "volumes=1:Volume*, initContainers=20:Container*, containers=2:Container*!, "
        "ephemeralContainers=34:EphemeralContainer*, restartPolicy=3:s, "
        "terminationGracePeriodSeconds=4:l!, activeDeadlineSeconds=5:l!, dnsPolicy=6:s, "
        "nodeSelector=7:{s}, serviceAccountName=8:s, serviceAccount=9:s, "
        "automountServiceAccountToken=21:b!, nodeName=10:s, hostNetwork=11:b, hostPID=12:b, "
        "hostIPC=13:b, shareProcessNamespace=27:b!, securityContext=14:PodSecurityContext, "
        "imagePullSecrets=15:LocalObjectReference*, hostname=16:s, subdomain=17:s, "
        "affinity=18:Affinity, schedulerName=19:s, tolerations=22:Toleration*, "
        "hostAliases=23:HostAlias*, priorityClassName=24:s, priority=25:i!, "
        "dnsConfig=26:PodDNSConfig, readinessGates=28:PodReadinessGate*, runtimeClassName=29:s!, "
        "enableServiceLinks=30:b!, preemptionPolicy=31:s!, overhead=32:{Quantity}, "
        "topologySpreadConstraints=33:TopologySpreadConstraint*, setHostnameAsFQDN=35:b!, "
        "os=36:PodOS, hostUsers=37:b!, schedulingGates=38:PodSchedulingGate*, "
        "resourceClaims=39:PodResourceClaim*, resources=40:ResourceRequirements, "
        "hostnameOverride=41:s!"
    ),
    "PodResourceClaim": "name=1:s!, resourceClaimName=3:s!, resourceClaimTemplateName=4:s!",
    "PodResourceClaimStatus": "name=1:s!, resourceClaimName=2:s!",
    "PodOS": "name=1:s!",
    "PodSchedulingGate": "name=1:s!",
    "TopologySpreadConstraint": (
        "maxSkew=1:i!, topologyKey=2:s!, whenUnsatisfiable=3:s!, labelSelector=4:LabelSelector, "
        "minDomains=5:i!, nodeAffinityPolicy=6:s!, nodeTaintsPolicy=7:s!, matchLabelKeys=8:s*"
    ),
    "HostAlias": "ip=1:s!, hostnames=2:s*",
    "PodSecurityContext": (
        "seLinuxOptions=1:SELinuxOptions, windowsOptions=8:WindowsSecurityContextOptions, "
        "runAsUser=2:l!, runAsGroup=6:l!, runAsNonRoot=3:b!, supplementalGroups=4:l*, "
        "fsGroup=5:l!, sysctls=7:Sysctl*, fsGroupChangePolicy=9:s!, "
        "seccompProfile=10:SeccompProfile, appArmorProfile=11:AppArmorProfile, "
        "supplementalGroupsPolicy=12:s!, seLinuxChangePolicy=13:s!"
    ),
    "SeccompProfile": "type=1:s!, localhostProfile=2:s!",
    "PodDNSConfig": "nameservers=1:s*, searches=2:s*, options=3:PodDNSConfigOption*",
    "PodDNSConfigOption": "name=1:s, value=2:s!",
    "PodIP": "ip=1:s",
    "HostIP": "ip=1:s",
    "EphemeralContainerCommon": (
        "name=1:s!, image=2:s, command=3:s*, args=4:s*, workingDir=5:s, ports=6:ContainerPort*, "
        "envFrom=19:EnvFromSource*, env=7:EnvVar*, resources=8:ResourceRequirements, "
        "resizePolicy=23:ContainerResizePolicy*, restartPolicy=24:s!, volumeMounts=9:VolumeMount*, "
        "volumeDevices=21:VolumeDevice*, livenessProbe=10:Probe, readinessProbe=11:Probe, "
        "startupProbe=22:Probe, lifecycle=12:Lifecycle, terminationMessagePath=13:s, "
        "terminationMessagePolicy=20:s, imagePullPolicy=14:s, securityContext=15:SecurityContext, "
        "stdin=16:b, stdinOnce=17:b, tty=18:b"
    ),
    "EphemeralContainer": "ephemeralContainerCommon=1:EphemeralContainerCommon^, targetContainerName=2:s",
    "PodStatus": (
        "phase=1:s, conditions=2:PodCondition*, message=3:s, reason=4:s, nominatedNodeName=11:s, "
        "hostIP=5:s, hostIPs=16:HostIP*, podIP=6:s, podIPs=12:PodIP*, startTime=7:Time, "
        "initContainerStatuses=10:ContainerStatus*, containerStatuses=8:ContainerStatus*, "
        "qosClass=9:s, ephemeralContainerStatuses=13:ContainerStatus*, resize=14:s, "
        "resourceClaimStatuses=15:PodResourceClaimStatus*"
    ),
    "Pod": "metadata=1:ObjectMeta, spec=2:PodSpec, status=3:PodStatus",
    "PodTemplateSpec": "metadata=1:ObjectMeta, spec=2:PodSpec",
    "ContainerStateWaiting": "reason=1:s, message=2:s",
    "ContainerStateRunning": "startedAt=1:Time",
    "ContainerStateTerminated": (
        "exitCode=1:i!, signal=2:i, reason=3:s, message=4:s, startedAt=5:Time, finishedAt=6:Time, "
        "containerID=7:s"
    ),
    "ContainerState": (
        "waiting=1:ContainerStateWaiting, running=2:ContainerStateRunning, "
        "terminated=3:ContainerStateTerminated"
    ),
    "ContainerStatus": (
        "name=1:s!, state=2:ContainerState, lastState=3:ContainerState, ready=4:b!, "
        "restartCount=5:i!, image=6:s!, imageID=7:s!, containerID=8:s, started=9:b!, "
        "allocatedResources=10:{Quantity}, resources=11:ResourceRequirements"
    ),
    "PodCondition": (
        "type=1:s!, status=2:s!, lastProbeTime=3:Time, lastTransitionTime=4:Time, reason=5:s, "
        "message=6:s"
    ),
    "SessionAffinityConfig": "clientIP=1:ClientIPConfig",
    "ClientIPConfig": "timeoutSeconds=1:i!",
    "ServiceStatus": "loadBalancer=1:LoadBalancerStatus, conditions=2:Condition*",
    "LoadBalancerStatus": "ingress=1:LoadBalancerIngress*",
    "LoadBalancerIngress": "ip=1:s, hostname=2:s, ipMode=3:s!, ports=4:PortStatus*",
    "ServiceSpec": (
        "ports=1:ServicePort*, selector=2:{s}, clusterIP=3:s, clusterIPs=18:s*, type=4:s, "
        "externalIPs=5:s*, sessionAffinity=7:s, loadBalancerIP=8:s, loadBalancerSourceRanges=9:s*, "
        "externalName=10:s, externalTrafficPolicy=11:s, healthCheckNodePort=12:i, "
        "publishNotReadyAddresses=13:b, sessionAffinityConfig=14:SessionAffinityConfig, "
        "ipFamilies=19:s*, ipFamilyPolicy=17:s!, allocateLoadBalancerNodePorts=20:b!, "
        "loadBalancerClass=21:s!, internalTrafficPolicy=22:s!, trafficDistribution=23:s!"
    ),
    "ServicePort": (
        "name=1:s, protocol=2:s, appProtocol=6:s!, port=3:i!, targetPort=4:IntOrString, "
        "nodePort=5:i"
    ),
    "Service": "metadata=1:ObjectMeta, spec=2:ServiceSpec, status=3:ServiceStatus",
    "ServiceAccount": (
        "metadata=1:ObjectMeta, secrets=2:ObjectReference*, "
        "imagePullSecrets=3:LocalObjectReference*, automountServiceAccountToken=4:b!"
    ),
    "NamespaceSpec": "finalizers=1:s*",
    "NamespaceStatus": "phase=1:s, conditions=2:NamespaceCondition*",
    "NamespaceCondition": "type=1:s!, status=2:s!, lastTransitionTime=4:Time, reason=5:s, message=6:s",
    "Namespace": "metadata=1:ObjectMeta, spec=2:NamespaceSpec, status=3:NamespaceStatus",
    "ObjectReference": (
        "kind=1:s, namespace=2:s, name=3:s, uid=4:s, apiVersion=5:s, resourceVersion=6:s, "
        "fieldPath=7:s"
    ),
    "LocalObjectReference": "name=1:s",
    "TypedLocalObjectReference": "apiGroup=1:s!, kind=2:s!, name=3:s!",
    "ResourceQuotaSpec": "hard=1:{Quantity}, scopes=2:s*, scopeSelector=3:ScopeSelector",
    "ScopeSelector": "matchExpressions=1:ScopedResourceSelectorRequirement*",
    "ScopedResourceSelectorRequirement": "scopeName=1:s!, operator=2:s!, values=3:s*",
    "ResourceQuotaStatus": "hard=1:{Quantity}, used=2:{Quantity}",
    "ResourceQuota": "metadata=1:ObjectMeta, spec=2:ResourceQuotaSpec, status=3:ResourceQuotaStatus",
    "Secret": "metadata=1:ObjectMeta, immutable=5:b!, data=2:{y}, stringData=4:{s}, type=3:s",
    "ConfigMap": "metadata=1:ObjectMeta, immutable=4:b!, data=2:{s}, binaryData=3:{y}",
    "DownwardAPIVolumeSource": "items=1:DownwardAPIVolumeFile*, defaultMode=2:i!",
    "DownwardAPIVolumeFile": (
        "path=1:s!, fieldRef=2:ObjectFieldSelector, resourceFieldRef=3:ResourceFieldSelector, "
        "mode=4:i!"
    ),
    "DownwardAPIProjection": "items=1:DownwardAPIVolumeFile*",
    "SecurityContext": (
        "capabilities=1:Capabilities, privileged=2:b!, seLinuxOptions=3:SELinuxOptions, "
        "windowsOptions=10:WindowsSecurityContextOptions, runAsUser=4:l!, runAsGroup=8:l!, "
        "runAsNonRoot=5:b!, readOnlyRootFilesystem=6:b!, allowPrivilegeEscalation=7:b!, "
        "procMount=9:s!, seccompProfile=11:SeccompProfile, appArmorProfile=12:AppArmorProfile"
    ),
    "SELinuxOptions": "user=1:s, role=2:s, type=3:s, level=4:s",
    "WindowsSecurityContextOptions": (
        "gmsaCredentialSpecName=1:s!, gmsaCredentialSpec=2:s!, runAsUserName=3:s!, "
        "hostProcess=4:b!"
    ),
    "Sysctl": "name=1:s!, value=2:s!",
    "PortStatus": "port=1:i!, protocol=2:s!, error=3:s!",
    "ImageVolumeSource": "reference=1:s, pullPolicy=2:s",
    "AppArmorProfile": "type=1:s!, localhostProfile=2:s!",
}

"""Field tables for apimachinery meta/v1 and the API groups other than core/v1.

Same compact form as `proto_tables_core` (see `proto_messages.parse_fields`): meta/v1
(ObjectMeta, LabelSelector, Condition, ...), apps/v1 Deployment, batch/v1 Job and CronJob,
networking/v1 Ingress, rbac/v1, policy/v1 PodDisruptionBudget, scheduling/v1 PriorityClass,
autoscaling/v1 HorizontalPodAutoscaler and Scale, authorization/v1 self-reviews and
authentication/v1 SelfSubjectReview and TokenRequest.
"""

GROUPS: dict[str, str] = {
    "ObjectMeta": (
        "name=1:s, generateName=2:s, namespace=3:s, selfLink=4:s, uid=5:s, resourceVersion=6:s, "
        "generation=7:l, creationTimestamp=8:Time!, deletionTimestamp=9:Time, "
        "deletionGracePeriodSeconds=10:l!, labels=11:{s}, annotations=12:{s}, "
        "ownerReferences=13:OwnerReference*, finalizers=14:s*, "
        "managedFields=17:ManagedFieldsEntry*"
    ),
    "OwnerReference": (
        "apiVersion=5:s!, kind=1:s!, name=3:s!, uid=4:s!, controller=6:b!, "
        "blockOwnerDeletion=7:b!"
    ),
    "ManagedFieldsEntry": (
        "manager=1:s, operation=2:s, apiVersion=3:s, time=4:Time, fieldsType=6:s, "
        "fieldsV1=7:FieldsV1, subresource=8:s"
    ),
    "LabelSelector": "matchLabels=1:{s}, matchExpressions=2:LabelSelectorRequirement*",
    "LabelSelectorRequirement": "key=1:s!, operator=2:s!, values=3:s*",
    "FieldSelectorRequirement": "key=1:s!, operator=2:s!, values=3:s*",
    "Condition": (
        "type=1:s!, status=2:s!, observedGeneration=3:l, lastTransitionTime=4:Time!, reason=5:s!, "
        "message=6:s!"
    ),
    "Deployment": "metadata=1:ObjectMeta, spec=2:DeploymentSpec, status=3:DeploymentStatus",
    "DeploymentSpec": (
        "replicas=1:i!, selector=2:LabelSelector!, template=3:PodTemplateSpec, "
        "strategy=4:DeploymentStrategy, minReadySeconds=5:i, revisionHistoryLimit=6:i!, "
        "paused=7:b, progressDeadlineSeconds=9:i!, podReplacementPolicy=10:s!"
    ),
    "DeploymentStrategy": "type=1:s, rollingUpdate=2:RollingUpdateDeployment",
    "RollingUpdateDeployment": "maxUnavailable=1:IntOrString, maxSurge=2:IntOrString",
    "DeploymentStatus": (
        "observedGeneration=1:l, replicas=2:i, updatedReplicas=3:i, readyReplicas=7:i, "
        "availableReplicas=4:i, unavailableReplicas=5:i, terminatingReplicas=9:i!, "
        "conditions=6:DeploymentCondition*, collisionCount=8:i!"
    ),
    "DeploymentCondition": (
        "type=1:s!, status=2:s!, lastUpdateTime=6:Time, lastTransitionTime=7:Time, reason=4:s, "
        "message=5:s"
    ),
    "CronJob": "metadata=1:ObjectMeta, spec=2:CronJobSpec, status=3:CronJobStatus",
    "CronJobSpec": (
        "schedule=1:s!, timeZone=8:s!, startingDeadlineSeconds=2:l!, concurrencyPolicy=3:s, "
        "suspend=4:b!, jobTemplate=5:JobTemplateSpec, successfulJobsHistoryLimit=6:i!, "
        "failedJobsHistoryLimit=7:i!"
    ),
    "CronJobStatus": "active=1:ObjectReference*, lastScheduleTime=4:Time, lastSuccessfulTime=5:Time",
    "Job": "metadata=1:ObjectMeta, spec=2:JobSpec, status=3:JobStatus",
    "JobCondition": (
        "type=1:s!, status=2:s!, lastProbeTime=3:Time, lastTransitionTime=4:Time, reason=5:s, "
        "message=6:s"
    ),
    "JobSpec": (
        "parallelism=1:i!, completions=2:i!, activeDeadlineSeconds=3:l!, "
        "podFailurePolicy=11:PodFailurePolicy, successPolicy=16:SuccessPolicy, backoffLimit=7:i!, "
        "backoffLimitPerIndex=12:i!, maxFailedIndexes=13:i!, selector=4:LabelSelector, "
        "manualSelector=5:b!, template=6:PodTemplateSpec, ttlSecondsAfterFinished=8:i!, "
        "completionMode=9:s!, suspend=10:b!, podReplacementPolicy=14:s!, managedBy=15:s!"
    ),
    "JobStatus": (
        "conditions=1:JobCondition*, startTime=2:Time, completionTime=3:Time, active=4:i, "
        "succeeded=5:i, failed=6:i, terminating=11:i!, completedIndexes=7:s, failedIndexes=10:s!, "
        "uncountedTerminatedPods=8:UncountedTerminatedPods, ready=9:i!"
    ),
    "JobTemplateSpec": "metadata=1:ObjectMeta, spec=2:JobSpec",
    "PodFailurePolicy": "rules=1:PodFailurePolicyRule*!",
    "PodFailurePolicyOnExitCodesRequirement": "containerName=1:s!, operator=2:s!, values=3:i*!",
    "PodFailurePolicyOnPodConditionsPattern": "type=1:s!, status=2:s!",
    "PodFailurePolicyRule": (
        "action=1:s!, onExitCodes=2:PodFailurePolicyOnExitCodesRequirement, "
        "onPodConditions=3:PodFailurePolicyOnPodConditionsPattern*!"
    ),
    "SuccessPolicy": "rules=1:SuccessPolicyRule*!",
    "SuccessPolicyRule": "succeededIndexes=1:s!, succeededCount=2:i!",
    "UncountedTerminatedPods": "succeeded=1:s*, failed=2:s*",
    "Ingress": "metadata=1:ObjectMeta, spec=2:IngressSpec, status=3:IngressStatus",
    "IngressSpec": (
        "ingressClassName=4:s!, defaultBackend=1:IngressBackend, tls=2:IngressTLS*, "
        "rules=3:IngressRule*"
    ),
    "IngressBackend": "service=4:IngressServiceBackend, resource=3:TypedLocalObjectReference",
    "IngressServiceBackend": "name=1:s!, port=2:ServiceBackendPort",
    "ServiceBackendPort": "name=1:s, number=2:i",
    "IngressTLS": "hosts=1:s*, secretName=2:s",
    "IngressRule": "host=1:s, ingressRuleValue=2:IngressRuleValue^",
    "IngressRuleValue": "http=1:HTTPIngressRuleValue",
    "HTTPIngressRuleValue": "paths=1:HTTPIngressPath*!",
    "HTTPIngressPath": "path=1:s, pathType=3:s!, backend=2:IngressBackend",
    "IngressStatus": "loadBalancer=1:IngressLoadBalancerStatus",
    "IngressLoadBalancerStatus": "ingress=1:IngressLoadBalancerIngress*",
    "IngressLoadBalancerIngress": "ip=1:s, hostname=2:s, ports=4:IngressPortStatus*",
    "IngressPortStatus": "port=1:i!, protocol=2:s!, error=3:s!",
    "Role": "metadata=1:ObjectMeta, rules=2:PolicyRule*!",
    "PolicyRule": "verbs=1:s*!, apiGroups=2:s*, resources=3:s*, resourceNames=4:s*, nonResourceURLs=5:s*",
    "RoleBinding": "metadata=1:ObjectMeta, subjects=2:Subject*, roleRef=3:RoleRef",
    "ClusterRoleBinding": "metadata=1:ObjectMeta, subjects=2:Subject*, roleRef=3:RoleRef",
    "Subject": "kind=1:s!, apiGroup=2:s, name=3:s!, namespace=4:s",
    "RoleRef": "apiGroup=1:s!, kind=2:s!, name=3:s!",
    "ClusterRole": "metadata=1:ObjectMeta, rules=2:PolicyRule*!, aggregationRule=3:AggregationRule",
    "AggregationRule": "clusterRoleSelectors=1:LabelSelector*",
    "PodDisruptionBudget": (
        "metadata=1:ObjectMeta, spec=2:PodDisruptionBudgetSpec, "
        "status=3:PodDisruptionBudgetStatus"
    ),
    "PodDisruptionBudgetSpec": (
        "minAvailable=1:IntOrString, selector=2:LabelSelector, maxUnavailable=3:IntOrString, "
        "unhealthyPodEvictionPolicy=4:s!"
    ),
    "PodDisruptionBudgetStatus": (
        "observedGeneration=1:l, disruptedPods=2:{Time}, disruptionsAllowed=3:i!, "
        "currentHealthy=4:i!, desiredHealthy=5:i!, expectedPods=6:i!, conditions=7:Condition*"
    ),
    "PriorityClass": (
        "metadata=1:ObjectMeta, value=2:i!, globalDefault=3:b, description=4:s, "
        "preemptionPolicy=5:s!"
    ),
    "HorizontalPodAutoscaler": (
        "metadata=1:ObjectMeta, spec=2:HorizontalPodAutoscalerSpec, "
        "status=3:HorizontalPodAutoscalerStatus"
    ),
    "HorizontalPodAutoscalerSpec": (
        "scaleTargetRef=1:CrossVersionObjectReference, minReplicas=2:i!, maxReplicas=3:i!, "
        "targetCPUUtilizationPercentage=4:i!"
    ),
    "CrossVersionObjectReference": "kind=1:s!, name=2:s!, apiVersion=3:s",
    "HorizontalPodAutoscalerStatus": (
        "observedGeneration=1:l!, lastScaleTime=2:Time, currentReplicas=3:i!, "
        "desiredReplicas=4:i!, currentCPUUtilizationPercentage=5:i!"
    ),
    "Scale": "metadata=1:ObjectMeta, spec=2:ScaleSpec, status=3:ScaleStatus",
    "ScaleSpec": "replicas=1:i",
    "ScaleStatus": "replicas=1:i!, selector=2:s",
    "SelfSubjectAccessReview": (
        "metadata=1:ObjectMeta, spec=2:SelfSubjectAccessReviewSpec, "
        "status=3:SubjectAccessReviewStatus"
    ),
    "SelfSubjectAccessReviewSpec": "resourceAttributes=1:ResourceAttributes, nonResourceAttributes=2:NonResourceAttributes",
    "ResourceAttributes": (
        "namespace=1:s, verb=2:s, group=3:s, version=4:s, resource=5:s, subresource=6:s, name=7:s, "
        "fieldSelector=8:FieldSelectorAttributes, labelSelector=9:LabelSelectorAttributes"
    ),
    "FieldSelectorAttributes": "rawSelector=1:s, requirements=2:FieldSelectorRequirement*",
    "LabelSelectorAttributes": "rawSelector=1:s, requirements=2:LabelSelectorRequirement*",
    "NonResourceAttributes": "path=1:s, verb=2:s",
    "SubjectAccessReviewStatus": "allowed=1:b!, denied=4:b, reason=2:s, evaluationError=3:s",
    "SelfSubjectRulesReview": (
        "metadata=1:ObjectMeta, spec=2:SelfSubjectRulesReviewSpec, "
        "status=3:SubjectRulesReviewStatus"
    ),
    "SelfSubjectRulesReviewSpec": "namespace=1:s",
    "SubjectRulesReviewStatus": (
        "resourceRules=1:ResourceRule*!, nonResourceRules=2:NonResourceRule*!, incomplete=3:b!, "
        "evaluationError=4:s"
    ),
    "ResourceRule": "verbs=1:s*!, apiGroups=2:s*, resources=3:s*, resourceNames=4:s*",
    "NonResourceRule": "verbs=1:s*!, nonResourceURLs=2:s*",
    "SelfSubjectReview": "metadata=1:ObjectMeta, status=2:SelfSubjectReviewStatus",
    "SelfSubjectReviewStatus": "userInfo=1:UserInfo",
    "UserInfo": "username=1:s, uid=2:s, groups=3:s*, extra=4:{ExtraValue}",
    "TokenRequest": "metadata=1:ObjectMeta, spec=2:TokenRequestSpec, status=3:TokenRequestStatus",
    "TokenRequestSpec": "audiences=1:s*!, expirationSeconds=4:l!, boundObjectRef=3:BoundObjectReference",
    "BoundObjectReference": "kind=1:s, apiVersion=2:s, name=3:s, uid=4:s",
    "TokenRequestStatus": "token=1:s!, expirationTimestamp=2:Time!",
}

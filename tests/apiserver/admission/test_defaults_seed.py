"""The study guide's manifests (and the Kubernetes docs' StatefulSet, Job and CronJob
examples), defaulted: each must read exactly like `kubectl get -o yaml` on a 1.32
cluster, minus what the registry and controllers add later (uid, resourceVersion,
creationTimestamp, generation, allocated clusterIP/nodePort, controller status)."""

from __future__ import annotations

import pytest
import yaml

from .support import defaulted

CASES = {
    "pod": ("""
apiVersion: v1
kind: Pod
metadata:
  name: my-app
  labels: {app: my-service, version: v2}
spec:
  containers:
    - name: app
      image: walmart/my-service:2.1.0
      ports: [{containerPort: 8080}]
      resources:
        requests: {cpu: "250m", memory: "256Mi"}
        limits: {cpu: "500m", memory: "512Mi"}
      livenessProbe:
        httpGet: {path: /actuator/health, port: 8080}
        initialDelaySeconds: 30
        periodSeconds: 10
      readinessProbe:
        httpGet: {path: /actuator/health/readiness, port: 8080}
        initialDelaySeconds: 5
        periodSeconds: 5
""", """
apiVersion: v1
kind: Pod
metadata:
  labels: {app: my-service, version: v2}
  name: my-app
spec:
  containers:
  - image: walmart/my-service:2.1.0
    imagePullPolicy: IfNotPresent
    livenessProbe:
      failureThreshold: 3
      httpGet: {path: /actuator/health, port: 8080, scheme: HTTP}
      initialDelaySeconds: 30
      periodSeconds: 10
      successThreshold: 1
      timeoutSeconds: 1
    name: app
    ports:
    - {containerPort: 8080, protocol: TCP}
    readinessProbe:
      failureThreshold: 3
      httpGet: {path: /actuator/health/readiness, port: 8080, scheme: HTTP}
      initialDelaySeconds: 5
      periodSeconds: 5
      successThreshold: 1
      timeoutSeconds: 1
    resources:
      limits: {cpu: 500m, memory: 512Mi}
      requests: {cpu: 250m, memory: 256Mi}
    terminationMessagePath: /dev/termination-log
    terminationMessagePolicy: File
  dnsPolicy: ClusterFirst
  enableServiceLinks: true
  preemptionPolicy: PreemptLowerPriority
  priority: 0
  restartPolicy: Always
  schedulerName: default-scheduler
  securityContext: {}
  serviceAccount: default
  serviceAccountName: default
  terminationGracePeriodSeconds: 30
  tolerations:
  - {effect: NoExecute, key: node.kubernetes.io/not-ready, operator: Exists, tolerationSeconds: 300}
  - {effect: NoExecute, key: node.kubernetes.io/unreachable, operator: Exists, tolerationSeconds: 300}
status: {phase: Pending, qosClass: Burstable}
"""),
    "deployment": ("""
apiVersion: apps/v1
kind: Deployment
metadata:
  name: order-service
  namespace: commerce
  labels: {app: order-service}
spec:
  replicas: 3
  selector: {matchLabels: {app: order-service}}
  strategy:
    type: RollingUpdate
    rollingUpdate: {maxSurge: 1, maxUnavailable: 0}
  template:
    metadata:
      labels: {app: order-service, version: v2}
    spec:
      containers:
        - name: order-service
          image: walmart/order-service:2.1.0
          ports: [{containerPort: 8080}]
          env:
            - {name: SPRING_PROFILES_ACTIVE, value: "prod"}
            - name: DB_PASSWORD
              valueFrom: {secretKeyRef: {name: db-credentials, key: password}}
          resources:
            requests: {cpu: "500m", memory: "512Mi"}
            limits: {cpu: "1000m", memory: "1Gi"}
""", """
apiVersion: apps/v1
kind: Deployment
metadata:
  labels: {app: order-service}
  name: order-service
  namespace: commerce
spec:
  progressDeadlineSeconds: 600
  replicas: 3
  revisionHistoryLimit: 10
  selector:
    matchLabels: {app: order-service}
  strategy:
    rollingUpdate: {maxSurge: 1, maxUnavailable: 0}
    type: RollingUpdate
  template:
    metadata:
      creationTimestamp: null
      labels: {app: order-service, version: v2}
    spec:
      containers:
      - env:
        - {name: SPRING_PROFILES_ACTIVE, value: prod}
        - name: DB_PASSWORD
          valueFrom:
            secretKeyRef: {key: password, name: db-credentials}
        image: walmart/order-service:2.1.0
        imagePullPolicy: IfNotPresent
        name: order-service
        ports:
        - {containerPort: 8080, protocol: TCP}
        resources:
          limits: {cpu: "1", memory: 1Gi}
          requests: {cpu: 500m, memory: 512Mi}
        terminationMessagePath: /dev/termination-log
        terminationMessagePolicy: File
      dnsPolicy: ClusterFirst
      restartPolicy: Always
      schedulerName: default-scheduler
      securityContext: {}
      terminationGracePeriodSeconds: 30
status: {}
"""),
    "daemonset": ("""
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: fluentd}
spec:
  selector: {matchLabels: {app: fluentd}}
  template:
    metadata: {labels: {app: fluentd}}
    spec:
      containers:
        - name: fluentd
          image: fluent/fluentd:v1.16
          volumeMounts: [{name: varlog, mountPath: /var/log}]
      volumes:
        - name: varlog
          hostPath: {path: /var/log}
""", """
apiVersion: apps/v1
kind: DaemonSet
metadata:
  annotations: {deprecated.daemonset.template.generation: "1"}
  name: fluentd
spec:
  revisionHistoryLimit: 10
  selector:
    matchLabels: {app: fluentd}
  template:
    metadata:
      creationTimestamp: null
      labels: {app: fluentd}
    spec:
      containers:
      - image: fluent/fluentd:v1.16
        imagePullPolicy: IfNotPresent
        name: fluentd
        resources: {}
        terminationMessagePath: /dev/termination-log
        terminationMessagePolicy: File
        volumeMounts:
        - {mountPath: /var/log, name: varlog}
      dnsPolicy: ClusterFirst
      restartPolicy: Always
      schedulerName: default-scheduler
      securityContext: {}
      terminationGracePeriodSeconds: 30
      volumes:
      - hostPath: {path: /var/log, type: ""}
        name: varlog
  updateStrategy:
    rollingUpdate: {maxSurge: 0, maxUnavailable: 1}
    type: RollingUpdate
status: {currentNumberScheduled: 0, desiredNumberScheduled: 0, numberMisscheduled: 0, numberReady: 0}
"""),
    "service-clusterip": ("""
apiVersion: v1
kind: Service
metadata: {name: order-service, namespace: commerce}
spec:
  type: ClusterIP
  selector: {app: order-service}
  ports:
    - {port: 80, targetPort: 8080, protocol: TCP}
""", """
apiVersion: v1
kind: Service
metadata: {name: order-service, namespace: commerce}
spec:
  internalTrafficPolicy: Cluster
  ipFamilies: [IPv4]
  ipFamilyPolicy: SingleStack
  ports:
  - {port: 80, protocol: TCP, targetPort: 8080}
  selector: {app: order-service}
  sessionAffinity: None
  type: ClusterIP
status: {loadBalancer: {}}
"""),
    "service-loadbalancer": ("""
apiVersion: v1
kind: Service
metadata:
  name: api-gateway
  annotations: {service.beta.kubernetes.io/aws-load-balancer-type: nlb}
spec:
  type: LoadBalancer
  selector: {app: api-gateway}
  ports:
    - {port: 443, targetPort: 8443}
""", """
apiVersion: v1
kind: Service
metadata:
  annotations: {service.beta.kubernetes.io/aws-load-balancer-type: nlb}
  name: api-gateway
spec:
  allocateLoadBalancerNodePorts: true
  externalTrafficPolicy: Cluster
  internalTrafficPolicy: Cluster
  ipFamilies: [IPv4]
  ipFamilyPolicy: SingleStack
  ports:
  - {port: 443, protocol: TCP, targetPort: 8443}
  selector: {app: api-gateway}
  sessionAffinity: None
  type: LoadBalancer
status: {loadBalancer: {}}
"""),
    "ingress": ("""
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: api-ingress}
spec:
  tls: [{hosts: [api.walmart.com], secretName: tls-secret}]
  rules:
    - host: api.walmart.com
      http:
        paths:
          - path: /orders
            pathType: Prefix
            backend: {service: {name: order-service, port: {number: 80}}}
""", """
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: api-ingress}
spec:
  rules:
  - host: api.walmart.com
    http:
      paths:
      - backend:
          service:
            name: order-service
            port: {number: 80}
        path: /orders
        pathType: Prefix
  tls:
  - hosts: [api.walmart.com]
    secretName: tls-secret
status: {loadBalancer: {}}
"""),
    "configmap": ("""
apiVersion: v1
kind: ConfigMap
metadata: {name: app-config}
data: {LOG_LEVEL: "INFO"}
""", """
apiVersion: v1
data: {LOG_LEVEL: INFO}
kind: ConfigMap
metadata: {name: app-config}
"""),
    "secret": ("""
apiVersion: v1
kind: Secret
metadata: {name: db-credentials}
type: Opaque
data: {username: YWRtaW4=, password: c3VwZXJzZWNyZXQ=}
""", """
apiVersion: v1
data: {password: c3VwZXJzZWNyZXQ=, username: YWRtaW4=}
kind: Secret
metadata: {name: db-credentials}
type: Opaque
"""),
    "pvc": ("""
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: postgres-data}
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: gp3
  resources: {requests: {storage: 50Gi}}
""", """
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: postgres-data}
spec:
  accessModes: [ReadWriteOnce]
  resources:
    requests: {storage: 50Gi}
  storageClassName: gp3
  volumeMode: Filesystem
status: {phase: Pending}
"""),
    "hpa": ("""
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: order-service-hpa}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: order-service}
  minReplicas: 3
  maxReplicas: 20
  metrics:
    - type: Resource
      resource: {name: cpu, target: {type: Utilization, averageUtilization: 70}}
  behavior:
    scaleUp:
      stabilizationWindowSeconds: 60
      policies: [{type: Percent, value: 50, periodSeconds: 60}]
    scaleDown:
      stabilizationWindowSeconds: 300
      policies: [{type: Percent, value: 10, periodSeconds: 60}]
""", """
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: order-service-hpa}
spec:
  behavior:
    scaleDown:
      policies:
      - {periodSeconds: 60, type: Percent, value: 10}
      selectPolicy: Max
      stabilizationWindowSeconds: 300
    scaleUp:
      policies:
      - {periodSeconds: 60, type: Percent, value: 50}
      selectPolicy: Max
      stabilizationWindowSeconds: 60
  maxReplicas: 20
  metrics:
  - resource:
      name: cpu
      target: {averageUtilization: 70, type: Utilization}
    type: Resource
  minReplicas: 3
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: order-service}
status: {currentMetrics: null, desiredReplicas: 0}
"""),
    "rolebinding": ("""
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: read-pods-binding, namespace: commerce}
subjects:
  - {kind: ServiceAccount, name: ci-deployer, namespace: commerce}
roleRef: {kind: Role, name: pod-reader, apiGroup: rbac.authorization.k8s.io}
""", """
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: read-pods-binding, namespace: commerce}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: pod-reader}
subjects:
- {kind: ServiceAccount, name: ci-deployer, namespace: commerce}
"""),
    "namespace": ("""
apiVersion: v1
kind: Namespace
metadata: {name: commerce}
""", """
apiVersion: v1
kind: Namespace
metadata:
  labels: {kubernetes.io/metadata.name: commerce}
  name: commerce
spec:
  finalizers: [kubernetes]
status: {phase: Active}
"""),
    "statefulset": ("""
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web}
spec:
  selector: {matchLabels: {app: nginx}}
  serviceName: nginx
  replicas: 3
  template:
    metadata: {labels: {app: nginx}}
    spec:
      containers:
      - name: nginx
        image: registry.k8s.io/nginx-slim:0.24
        ports: [{containerPort: 80, name: web}]
        volumeMounts: [{name: www, mountPath: /usr/share/nginx/html}]
  volumeClaimTemplates:
  - metadata: {name: www}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Gi}}
""", """
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web}
spec:
  persistentVolumeClaimRetentionPolicy: {whenDeleted: Retain, whenScaled: Retain}
  podManagementPolicy: OrderedReady
  replicas: 3
  revisionHistoryLimit: 10
  selector:
    matchLabels: {app: nginx}
  serviceName: nginx
  template:
    metadata:
      creationTimestamp: null
      labels: {app: nginx}
    spec:
      containers:
      - image: registry.k8s.io/nginx-slim:0.24
        imagePullPolicy: IfNotPresent
        name: nginx
        ports:
        - {containerPort: 80, name: web, protocol: TCP}
        resources: {}
        terminationMessagePath: /dev/termination-log
        terminationMessagePolicy: File
        volumeMounts:
        - {mountPath: /usr/share/nginx/html, name: www}
      dnsPolicy: ClusterFirst
      restartPolicy: Always
      schedulerName: default-scheduler
      securityContext: {}
      terminationGracePeriodSeconds: 30
  updateStrategy:
    rollingUpdate: {partition: 0}
    type: RollingUpdate
  volumeClaimTemplates:
  - apiVersion: v1
    kind: PersistentVolumeClaim
    metadata: {creationTimestamp: null, name: www}
    spec:
      accessModes: [ReadWriteOnce]
      resources:
        requests: {storage: 1Gi}
      volumeMode: Filesystem
    status: {phase: Pending}
status: {availableReplicas: 0, replicas: 0}
"""),
    "job": ("""
apiVersion: batch/v1
kind: Job
metadata: {name: pi, uid: 5f0b2c1e-1111-2222-3333-444455556666}
spec:
  template:
    spec:
      containers:
      - name: pi
        image: perl:5.34.0
        command: ["perl", "-Mbignum=bpi", "-wle", "print bpi(2000)"]
      restartPolicy: Never
  backoffLimit: 4
""", """
apiVersion: batch/v1
kind: Job
metadata:
  labels:
    batch.kubernetes.io/controller-uid: 5f0b2c1e-1111-2222-3333-444455556666
    batch.kubernetes.io/job-name: pi
    controller-uid: 5f0b2c1e-1111-2222-3333-444455556666
    job-name: pi
  name: pi
  uid: 5f0b2c1e-1111-2222-3333-444455556666
spec:
  backoffLimit: 4
  completionMode: NonIndexed
  completions: 1
  manualSelector: false
  parallelism: 1
  podReplacementPolicy: TerminatingOrFailed
  selector:
    matchLabels: {batch.kubernetes.io/controller-uid: 5f0b2c1e-1111-2222-3333-444455556666}
  suspend: false
  template:
    metadata:
      creationTimestamp: null
      labels:
        batch.kubernetes.io/controller-uid: 5f0b2c1e-1111-2222-3333-444455556666
        batch.kubernetes.io/job-name: pi
        controller-uid: 5f0b2c1e-1111-2222-3333-444455556666
        job-name: pi
    spec:
      containers:
      - command: [perl, -Mbignum=bpi, -wle, print bpi(2000)]
        image: perl:5.34.0
        imagePullPolicy: IfNotPresent
        name: pi
        resources: {}
        terminationMessagePath: /dev/termination-log
        terminationMessagePolicy: File
      dnsPolicy: ClusterFirst
      restartPolicy: Never
      schedulerName: default-scheduler
      securityContext: {}
      terminationGracePeriodSeconds: 30
status: {}
"""),
    "cronjob": ("""
apiVersion: batch/v1
kind: CronJob
metadata: {name: hello}
spec:
  schedule: "* * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          containers:
          - name: hello
            image: busybox:1.28
            command: [/bin/sh, -c, date]
          restartPolicy: OnFailure
""", """
apiVersion: batch/v1
kind: CronJob
metadata: {name: hello}
spec:
  concurrencyPolicy: Allow
  failedJobsHistoryLimit: 1
  jobTemplate:
    metadata: {creationTimestamp: null}
    spec:
      template:
        metadata: {creationTimestamp: null}
        spec:
          containers:
          - command: [/bin/sh, -c, date]
            image: busybox:1.28
            imagePullPolicy: IfNotPresent
            name: hello
            resources: {}
            terminationMessagePath: /dev/termination-log
            terminationMessagePolicy: File
          dnsPolicy: ClusterFirst
          restartPolicy: OnFailure
          schedulerName: default-scheduler
          securityContext: {}
          terminationGracePeriodSeconds: 30
  schedule: '* * * * *'
  successfulJobsHistoryLimit: 3
  suspend: false
status: {}
"""),
}


@pytest.mark.parametrize(("manifest", "expected"), [pytest.param(*CASES[name], id=name) for name in CASES])
def test_defaulted_manifest_reads_like_a_real_cluster(manifest: str, expected: str) -> None:
    assert defaulted(yaml.safe_load(manifest)) == yaml.safe_load(expected)


@pytest.mark.parametrize("name", list(CASES))
def test_defaulting_is_idempotent(name: str) -> None:
    once = defaulted(yaml.safe_load(CASES[name][0]))
    assert defaulted(once) == once

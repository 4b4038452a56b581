"""The controller-manager: the workload controllers in one process, under leader election.

    registry.py  controllers by name (`--controllers` selection), the context they are
                 built from (client, shared informers, EventRecorder per component, workers)
    run.py       run_controller_manager: Lease kube-system/kube-controller-manager, then
                 informers, cache sync, controllers; run_controllers without election
    process.py   main: the `mkp controller-manager` process (uvloop, SIGTERM/SIGINT)

It talks to the API server only through `minikube_py.client`, so it can run in its own
process, on another host, or as one of several replicas of which one leads.
"""

from controllers.manager.process import main, make_client
from controllers.manager.registry import (
    ALIASES,
    CONTROLLERS,
    ControllerContext,
    RunnableController,
    select_controllers,
)
from controllers.manager.run import (
    FIELD_MANAGER,
    LeaderElectionConfig,
    LeaderElectionLost,
    run_controller_manager,
    run_controllers,
)

__all__ = [
    "ALIASES", "CONTROLLERS", "FIELD_MANAGER", "ControllerContext", "LeaderElectionConfig", "LeaderElectionLost",
    "RunnableController", "main", "make_client", "run_controller_manager", "run_controllers", "select_controllers",
]

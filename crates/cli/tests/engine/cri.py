"""A minimal CRI v1 client that makes the calls kubelet makes for one pod, for the CRI
integration test (crates/cli/tests/cri.rs). Runs in the venv of `scripts/engines venv`
(the container-runtime-interface-api package: CRI v1 stubs on grpcio).

Usage: cri.py SOCKET CALL JSON
  version            {}
  run_pod            {"pod": POD, "handler": "modgate"}            -> {"id": POD_ID}
  create_container   {"pod_id": ID, "pod": POD, "name": N, "image": IMG,
                      "command": [...], "annotations": {...}}       -> {"id": CONTAINER_ID}
  start_container    {"id": ID}
  stop_container     {"id": ID, "timeout": 1}
  stop_pod           {"id": ID}
  remove_pod         {"id": ID}
  list_pods          {}                                             -> {"ids": [...]}
  list_containers    {}                                             -> {"ids": [...]}
POD = {"name", "uid", "namespace", "annotations", "log_directory"}: a host-network pod
(NamespaceOption network NODE, empty hostname: what kubelet sends for hostNetwork).

Prints the result as JSON on stdout. A failed call prints the gRPC status code and its
details on stderr and exits 1: the details are what kubelet would show in pod events.
"""

import json
import sys

import grpc
from cri_api.v1 import api_pb2 as cri
from cri_api.v1.api_pb2_grpc import RuntimeServiceStub

NODE = cri.NamespaceMode.Value("NODE")


def namespaces():
    return cri.NamespaceOption(network=NODE, pid=cri.NamespaceMode.Value("CONTAINER"),
                               ipc=cri.NamespaceMode.Value("POD"))


def pod_config(pod):
    return cri.PodSandboxConfig(
        metadata=cri.PodSandboxMetadata(name=pod["name"], uid=pod["uid"],
                                        namespace=pod["namespace"], attempt=0),
        hostname="",
        log_directory=pod["log_directory"],
        labels={"io.kubernetes.pod.name": pod["name"]},
        annotations=pod.get("annotations", {}),
        linux=cri.LinuxPodSandboxConfig(
            security_context=cri.LinuxSandboxSecurityContext(namespace_options=namespaces())),
    )


def call(rt, name, a):
    if name == "version":
        v = rt.Version(cri.VersionRequest(version="v1"))
        return {"runtime_name": v.runtime_name, "runtime_version": v.runtime_version,
                "runtime_api_version": v.runtime_api_version}
    if name == "run_pod":
        r = rt.RunPodSandbox(cri.RunPodSandboxRequest(config=pod_config(a["pod"]),
                                                      runtime_handler=a.get("handler", "")))
        return {"id": r.pod_sandbox_id}
    if name == "create_container":
        cfg = cri.ContainerConfig(
            metadata=cri.ContainerMetadata(name=a["name"], attempt=0),
            image=cri.ImageSpec(image=a["image"]),
            command=a["command"],
            log_path=a["name"] + ".log",
            annotations=a.get("annotations", {}),
            linux=cri.LinuxContainerConfig(
                security_context=cri.LinuxContainerSecurityContext(namespace_options=namespaces())),
        )
        r = rt.CreateContainer(cri.CreateContainerRequest(
            pod_sandbox_id=a["pod_id"], config=cfg, sandbox_config=pod_config(a["pod"])))
        return {"id": r.container_id}
    if name == "start_container":
        rt.StartContainer(cri.StartContainerRequest(container_id=a["id"]))
        return {}
    if name == "stop_container":
        rt.StopContainer(cri.StopContainerRequest(container_id=a["id"], timeout=a.get("timeout", 1)))
        return {}
    if name == "stop_pod":
        rt.StopPodSandbox(cri.StopPodSandboxRequest(pod_sandbox_id=a["id"]))
        return {}
    if name == "remove_pod":
        rt.RemovePodSandbox(cri.RemovePodSandboxRequest(pod_sandbox_id=a["id"]))
        return {}
    if name == "list_pods":
        return {"ids": [p.id for p in rt.ListPodSandbox(cri.ListPodSandboxRequest()).items]}
    if name == "list_containers":
        return {"ids": [c.id for c in rt.ListContainers(cri.ListContainersRequest()).containers]}
    raise SystemExit(f"cri.py: unknown call {name}")


def main():
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    sock, name, arg = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    with grpc.insecure_channel("unix://" + sock) as ch:
        rt = RuntimeServiceStub(ch)
        try:
            print(json.dumps(call(rt, name, arg)))
        except grpc.RpcError as e:
            print(f"cri {name}: {e.code().name}: {e.details()}", file=sys.stderr)
            sys.exit(1)


if __name__ == "__main__":
    main()

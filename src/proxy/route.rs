//! Where a call goes, from its `:path` alone: relayed untouched, held and admitted, or
//! refused by the proxy.
//!
//! The rule is fail-closed for what the proxy cannot see. A call that creates or changes a
//! container, or runs a process in one, is either admitted ([`Method`]) or refused; it is
//! never relayed unjudged unless the operator said so (`proxy.cri: relay`). CRI calls are
//! the case in point: containerd's CRI plugin creates containers in-process, so no
//! `Containers/Create` ever crosses the proxy for them. Read-only, stop and remove calls
//! are relayed: they add no power.

use crate::config::CriMode;
use crate::proxy::admit::{CriCall, Method};
use crate::proxy::grpc::{Code, Status};

/// What the relay does with a new stream.
#[derive(Debug, PartialEq)]
pub enum Route {
    Relay,
    Admit(Method),
    Refuse(Status),
}

/// CRI `RuntimeService` methods that add no power: reads, stop, remove, log reopening.
/// Every other method of the service — `RunPodSandbox`, `CreateContainer`,
/// `StartContainer`, `UpdateContainerResources`, `Exec`, `ExecSync`, `Attach`,
/// `PortForward`, `CheckpointContainer`, `UpdateRuntimeConfig`, and any added later — makes
/// or changes containers out of the proxy's sight.
const CRI_RELAYED: &[&str] = &[
    "Version",
    "StopPodSandbox",
    "RemovePodSandbox",
    "PodSandboxStatus",
    "ListPodSandbox",
    "StopContainer",
    "RemoveContainer",
    "ListContainers",
    "ContainerStatus",
    "ReopenContainerLog",
    "ContainerStats",
    "ListContainerStats",
    "PodSandboxStats",
    "ListPodSandboxStats",
    "Status",
    "GetContainerEvents",
    "ListMetricDescriptors",
    "ListPodSandboxMetrics",
    "RuntimeConfig",
];

/// With `proxy.cri: admit`, relayed too: `StartContainer` starts a container as the
/// admitted `CreateContainer` stored it.
const CRI_RELAYED_WHEN_ADMITTED: &[&str] = &["StartContainer"];

/// CRI's runtime services, by API version.
const CRI_RUNTIME_SERVICES: &[&str] = &[
    "runtime.v1.RuntimeService",
    "runtime.v1alpha2.RuntimeService",
];

/// CRI's image services, by API version.
const CRI_IMAGE_SERVICES: &[&str] = &["runtime.v1.ImageService", "runtime.v1alpha2.ImageService"];

/// containerd's sandbox API (1.7 and later) starts sandboxes through shims, like CRI.
const SANDBOX_CONTROLLER: &str = "containerd.services.sandbox.v1.Controller";
const SANDBOX_RELAYED: &[&str] = &["Status", "Wait", "Stop", "Shutdown", "Metrics", "Platform"];

/// The route of a stream whose request headers carry `paths` (every `:path` sent).
pub fn route(paths: &[Vec<u8>], cri: CriMode) -> Route {
    let path = match paths {
        [path] => path,
        [] => return refuse("the request has no :path".to_owned()),
        _ => return refuse("the request has more than one :path".to_owned()),
    };
    let Some((service, method)) = canonical(path) else {
        return refuse(format!(
            ":path {:?} is not /package.Service/Method",
            String::from_utf8_lossy(path)
        ));
    };
    if let Some(method) = Method::from_parts(service, method) {
        return Route::Admit(method);
    }
    if cri == CriMode::Admit {
        let call = if CRI_RUNTIME_SERVICES.contains(&service) {
            CriCall::from_method(method)
        } else if CRI_IMAGE_SERVICES.contains(&service) {
            CriCall::from_image_method(method)
        } else {
            None
        };
        if let Some(call) = call {
            return Route::Admit(Method::Cri(call));
        }
    }
    let unjudged = if CRI_RUNTIME_SERVICES.contains(&service) {
        let relayed = CRI_RELAYED.contains(&method)
            || (cri == CriMode::Admit && CRI_RELAYED_WHEN_ADMITTED.contains(&method));
        cri != CriMode::Relay && !relayed
    } else {
        service == SANDBOX_CONTROLLER && !SANDBOX_RELAYED.contains(&method)
    };
    if unjudged {
        let how = if service == SANDBOX_CONTROLLER {
            "create sandboxes with ctr or the CRI door instead"
        } else {
            "admit them at the CRI door, or set `proxy.cri: relay` to pass CRI calls on unchecked"
        };
        let status = Status::new(
            Code::PermissionDenied,
            format!(
                "portcullis: {service}/{method} creates or changes containers that the proxy \
                 cannot see, so it is refused; {how}"
            ),
        );
        return Route::Refuse(status);
    }
    Route::Relay
}

/// `/package.Service/Method` with both parts non-empty and printable ASCII, as a gRPC
/// server routes it. grpc-go strips one leading slash when present and splits at the last
/// one, so a path without its slash (`pkg.Service/Method`) or with more parts reaches a
/// method other than the one its bytes spell; such paths are refused, not interpreted.
fn canonical(path: &[u8]) -> Option<(&str, &str)> {
    let rest = path.strip_prefix(b"/")?;
    let text = std::str::from_utf8(rest).ok()?;
    let (service, method) = text.split_once('/')?;
    let part = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic() && b != b'/');
    (part(service) && part(method)).then_some((service, method))
}

fn refuse(message: String) -> Route {
    Route::Refuse(Status::new(
        Code::InvalidArgument,
        format!("portcullis: {message}"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::admit::{Enter, PodCall};

    fn at(path: &str, cri: CriMode) -> Route {
        route(&[path.as_bytes().to_vec()], cri)
    }

    fn refused(route: Route) -> Status {
        match route {
            Route::Refuse(status) => status,
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn paths_that_are_not_canonical_are_refused() {
        assert_eq!(at("/a.B/C", CriMode::Refuse), Route::Relay);
        for path in [
            "a.B/C",
            "containerd.services.containers.v1.Containers/Create",
            "//containerd.services.containers.v1.Containers/Create",
            "/containerd.services.containers.v1.Containers/Create/",
            "/a/b/c",
            "/a.B/",
            "//C",
            "/",
            "",
            "/a.B/C D",
            "/a.B/C\u{e9}",
        ] {
            let s = refused(at(path, CriMode::Refuse));
            assert_eq!(s.code, Code::InvalidArgument, "{path}");
        }
        assert!(refused(route(&[], CriMode::Relay))
            .message
            .contains("no :path"));
        let two = vec![b"/a.B/C".to_vec(), b"/a.B/C".to_vec()];
        assert!(refused(route(&two, CriMode::Relay))
            .message
            .contains("more than one"));
        let s = refused(at("a.B/C", CriMode::Refuse));
        assert!(s.message.contains(":path \"a.B/C\""), "{}", s.message);
    }

    #[test]
    fn admitted_methods_are_admitted() {
        assert_eq!(
            at(
                "/containerd.services.tasks.v1.Tasks/Update",
                CriMode::Refuse
            ),
            Route::Admit(Method::UpdateTask)
        );
        assert_eq!(
            at(
                "/containerd.services.containers.v1.Containers/Create",
                CriMode::Relay
            ),
            Route::Admit(Method::CreateContainer)
        );
    }

    #[test]
    fn cri_calls_that_make_or_change_containers_are_refused_unless_relayed() {
        for service in CRI_RUNTIME_SERVICES {
            for method in [
                "RunPodSandbox",
                "CreateContainer",
                "StartContainer",
                "UpdateContainerResources",
                "ExecSync",
                "Exec",
                "Attach",
                "PortForward",
                "CheckpointContainer",
                "UpdateRuntimeConfig",
                "SomethingNew",
            ] {
                let path = format!("/{service}/{method}");
                let s = refused(at(&path, CriMode::Refuse));
                assert_eq!(s.code, Code::PermissionDenied);
                assert!(s.message.contains("proxy.cri: relay"), "{}", s.message);
                assert_eq!(at(&path, CriMode::Relay), Route::Relay);
            }
            for method in ["Version", "ListPodSandbox", "StopContainer", "Status"] {
                assert_eq!(
                    at(&format!("/{service}/{method}"), CriMode::Refuse),
                    Route::Relay
                );
            }
        }
        let images = "/runtime.v1.ImageService/PullImage";
        assert_eq!(at(images, CriMode::Refuse), Route::Relay);
    }

    #[test]
    fn the_cri_door_admits_sandboxes_and_containers_and_refuses_the_rest() {
        for service in CRI_RUNTIME_SERVICES {
            let at = |method: &str| at(&format!("/{service}/{method}"), CriMode::Admit);
            assert_eq!(
                at("RunPodSandbox"),
                Route::Admit(Method::Cri(CriCall::Pod(PodCall::RunPodSandbox)))
            );
            assert_eq!(
                at("CreateContainer"),
                Route::Admit(Method::Cri(CriCall::Pod(PodCall::CreateContainer)))
            );
            for method in [
                "StartContainer",
                "Version",
                "ListPodSandbox",
                "StopContainer",
            ] {
                assert_eq!(at(method), Route::Relay, "{method}");
            }
            let images = service.replace("RuntimeService", "ImageService");
            assert_eq!(
                super::route(
                    &[format!("/{images}/PullImage").into_bytes()],
                    CriMode::Admit
                ),
                Route::Admit(Method::Cri(CriCall::Pod(PodCall::PullImage)))
            );
            for (method, call) in [
                ("ExecSync", Enter::ExecSync),
                ("Exec", Enter::Exec),
                ("Attach", Enter::Attach),
                ("PortForward", Enter::PortForward),
            ] {
                assert_eq!(
                    at(method),
                    Route::Admit(Method::Cri(CriCall::Enter(call))),
                    "{method}"
                );
            }
            assert_eq!(
                at("UpdateContainerResources"),
                Route::Admit(Method::Cri(CriCall::Resize))
            );
            for method in [
                "UpdatePodSandboxResources",
                "CheckpointContainer",
                "UpdateRuntimeConfig",
                "SomethingNew",
            ] {
                let s = refused(at(method));
                assert_eq!(s.code, Code::PermissionDenied, "{method}");
            }
        }
    }

    #[test]
    fn sandbox_controller_starts_are_refused() {
        let create = "/containerd.services.sandbox.v1.Controller/Create";
        assert!(matches!(at(create, CriMode::Relay), Route::Refuse(_)));
        let status = "/containerd.services.sandbox.v1.Controller/Status";
        assert_eq!(at(status, CriMode::Refuse), Route::Relay);
    }
}

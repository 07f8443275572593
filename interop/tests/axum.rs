//! axum on pinwheel: a Router with routes and a JSON body, served through `net::serve` (one
//! pinned session per connection) with hyper-util's `TowerToHyperService`; called by hyper's
//! client on pinwheel and by curl when it is installed.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, StatusCode};
use pinwheel_interop::{Greet, Greeting, http_request, start_app};
use pinwheel_tests::rt;

fn get(path: &str) -> Request<Full<Bytes>> {
    Request::get(path)
        .header("host", "localhost")
        .body(Full::default())
        .unwrap()
}

#[test]
fn axum_routes_and_json_on_pinned_sessions() {
    let rt = rt(2);
    rt.block_on(async {
        let addr = start_app().await;

        let (status, body) = http_request(addr, get("/")).await.unwrap();
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, "hello from axum on pinwheel\n");

        let greet = serde_json::to_vec(&Greet {
            name: "pinwheel".into(),
        })
        .unwrap();
        let req = Request::builder()
            .method(Method::POST)
            .uri("/greet")
            .header("host", "localhost")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(greet)))
            .unwrap();
        let (status, body) = http_request(addr, req).await.unwrap();
        assert_eq!(status, StatusCode::OK);
        let g: Greeting = serde_json::from_slice(&body).unwrap();
        assert_eq!(g.greeting, "hello, pinwheel");
        assert!(g.worker.is_some(), "the handler runs on a worker");

        // Sessions are spread round-robin over the workers: both answer.
        let mut workers = std::collections::HashSet::new();
        for _ in 0..4 {
            let (_, body) = http_request(addr, get("/worker")).await.unwrap();
            workers.insert(String::from_utf8(body.to_vec()).unwrap());
        }
        assert_eq!(workers.len(), 2, "{workers:?}");

        let (status, _) = http_request(addr, get("/nowhere")).await.unwrap();
        assert_eq!(status, StatusCode::NOT_FOUND);
        // A JSON body that does not parse: axum's 4xx, the server goes on.
        let req = Request::builder()
            .method(Method::POST)
            .uri("/greet")
            .header("host", "localhost")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from_static(b"{not json")))
            .unwrap();
        let (status, _) = http_request(addr, req).await.unwrap();
        assert!(status.is_client_error(), "{status}");
    });
}

#[test]
fn axum_answers_curl() {
    if std::process::Command::new("curl")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("curl is not installed: skipped");
        return;
    }
    let rt = rt(2);
    let addr = rt.block_on(start_app());
    let out = std::process::Command::new("curl")
        .args([
            "-s",
            "--max-time",
            "30",
            "-H",
            "content-type: application/json",
        ])
        .args(["-d", r#"{"name":"curl"}"#])
        .arg(format!("http://{addr}/greet"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let g: Greeting = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(g.greeting, "hello, curl");
    rt.shutdown_timeout(Duration::from_secs(5));
}

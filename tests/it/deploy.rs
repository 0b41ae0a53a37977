//! The deployment units under `deploy/`, checked without a host or a cluster:
//! - the systemd unit passes `systemd-analyze verify` (with `ExecStart` pointed at the binary
//!   this build made, since verify wants it to exist) and has the keys a supervisor of this
//!   service needs (a parse of the unit, which also runs where systemd is absent);
//! - the Kubernetes manifests pass `kubernetes-validate --strict` (PyPI, bundled schemas,
//!   offline), the Deployment fits the service's stop budget and probes its routes, and the
//!   KEDA ScaledObject names the stream and consumer `src/bus/subjects.rs` makes.
//!
//! The tools are installed by `DOTA_WITH_TEST_DEPS=1 scripts/install-deps.sh`; without them
//! a test skips locally and fails in CI (`CI` set), as the promtool tests do.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::Command;

use dota_orchestrator::bus::subjects::{JOBS_STREAM, QueueNames};
use dota_orchestrator::domain::{Priority, ResourceKind};
use yaml_rust2::{Yaml, YamlLoader};

use crate::common;
use crate::dashboards::metric_names;

const UNIT: &str = "deploy/systemd/dota-orchestrator.service";
const KUBE_DIR: &str = "deploy/kubernetes";

/// Runs a tool: whether it succeeded and what it said (stdout, then stderr); `None` (a skip,
/// refused under CI) when it is not installed.
fn run_tool(program: &str, args: &[&str], install_hint: &str) -> Option<(bool, String)> {
    match Command::new(program).args(args).output() {
        Ok(out) => Some((
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            assert!(
                std::env::var_os("CI").is_none(),
                "{program} is not on PATH; {install_hint}"
            );
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: {program} is not on PATH ({install_hint})"
            );
            None
        }
        Err(e) => panic!("running {program}: {e}"),
    }
}

/// `[Section]` → key → every value given (systemd keys may repeat).
fn parse_unit(text: &str) -> BTreeMap<String, BTreeMap<String, Vec<String>>> {
    let mut sections: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    let mut current = String::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = name.to_string();
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("{UNIT}: `{line}` is not key=value"));
        sections
            .entry(current.clone())
            .or_default()
            .entry(key.trim().to_string())
            .or_default()
            .push(value.trim().to_string());
    }
    sections
}

/// The service's stop budget, read from `src/app.rs` so the manifests follow it.
fn stop_budget_secs() -> u64 {
    let source = std::fs::read_to_string(common::repo_path("src/app.rs")).expect("app.rs");
    let line = source
        .lines()
        .find(|l| l.starts_with("const STOP_BUDGET: Duration = Duration::from_secs("))
        .expect("STOP_BUDGET in src/app.rs");
    line.trim_start_matches("const STOP_BUDGET: Duration = Duration::from_secs(")
        .trim_end_matches(");")
        .parse()
        .expect("STOP_BUDGET in whole seconds")
}

#[test]
fn the_systemd_unit_has_what_a_supervisor_of_this_service_needs() {
    let text = std::fs::read_to_string(common::repo_path(UNIT)).expect("unit file");
    let unit = parse_unit(&text);
    let service = &unit["Service"];
    let one = |key: &str| -> &str {
        let values = service
            .get(key)
            .unwrap_or_else(|| panic!("[Service] sets {key}"));
        values.last().expect("a value")
    };
    let user = one("User");
    assert!(
        !user.is_empty() && user != "root",
        "a dedicated user: {user}"
    );
    assert_eq!(one("Restart"), "on-failure");
    // The service stops its embedded nats-server itself, after its naks went out.
    assert_eq!(one("KillMode"), "mixed");
    assert_eq!(one("NoNewPrivileges"), "yes");
    assert_eq!(one("ProtectSystem"), "strict");
    assert!(one("EnvironmentFile").contains("/etc/dota-orchestrator/"));
    let state = format!("/var/lib/{}", one("StateDirectory"));
    assert!(
        service["ReadWritePaths"].iter().any(|p| p == &state),
        "the data dir {state} is writable"
    );
    assert_eq!(one("WorkingDirectory"), state, "data_dir defaults under it");
    let timeout: u64 = one("TimeoutStopSec")
        .trim_end_matches('s')
        .parse()
        .expect("TimeoutStopSec in seconds");
    // The app's budget, then the embedded nats-server's own 10 s at most.
    assert!(
        timeout >= stop_budget_secs() + 10,
        "TimeoutStopSec {timeout} covers the stop budget and the embedded server"
    );
    assert!(one("ExecStart").ends_with("dota-orchestrator serve"));
    assert!(unit["Install"]["WantedBy"].contains(&"multi-user.target".to_string()));
}

#[test]
fn the_systemd_unit_passes_systemd_analyze_verify() {
    let text = std::fs::read_to_string(common::repo_path(UNIT)).expect("unit file");
    // verify checks that ExecStart's binary exists: point it at this build's.
    let binary = env!("CARGO_BIN_EXE_dota-orchestrator");
    let text = text.replace(
        "ExecStart=/usr/local/bin/dota-orchestrator",
        &format!("ExecStart={binary}"),
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("dota-orchestrator.service");
    std::fs::write(&path, text).expect("write unit");
    let Some((ok, said)) = run_tool(
        "systemd-analyze",
        &["verify", path.to_str().expect("UTF-8 path")],
        "it comes with systemd (apt-get install systemd)",
    ) else {
        return;
    };
    // verify exits 0 on unknown keys and bad values ("..., ignoring"): any word is a finding.
    assert!(
        ok && said.trim().is_empty(),
        "systemd-analyze verify {UNIT}:\n{said}"
    );
}

fn kube_yaml(file: &str) -> Yaml {
    let path = common::repo_path(&format!("{KUBE_DIR}/{file}"));
    let text = std::fs::read_to_string(&path).expect("manifest");
    let mut docs = YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
    assert_eq!(docs.len(), 1, "{file} holds one object");
    docs.remove(0)
}

/// The files `kustomization.yaml` lists.
fn kustomize_resources() -> Vec<String> {
    kube_yaml("kustomization.yaml")["resources"]
        .as_vec()
        .expect("resources")
        .iter()
        .map(|r| r.as_str().expect("file name").to_string())
        .collect()
}

/// Every object kustomization.yaml applies, by kind.
fn kube_objects() -> BTreeMap<String, Yaml> {
    kustomize_resources()
        .iter()
        .map(|f| {
            let doc = kube_yaml(f);
            (doc["kind"].as_str().expect("kind").to_string(), doc)
        })
        .collect()
}

#[test]
fn kubernetes_manifests_pass_kubernetes_validate() {
    let files: Vec<String> = kustomize_resources()
        .iter()
        .map(|f| {
            common::repo_path(&format!("{KUBE_DIR}/{f}"))
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let mut args = vec!["--strict"];
    args.extend(files.iter().map(String::as_str));
    let Some((ok, said)) = run_tool(
        "kubernetes-validate",
        &args,
        "DOTA_WITH_TEST_DEPS=1 scripts/install-deps.sh installs it from PyPI",
    ) else {
        return;
    };
    assert!(ok, "kubernetes-validate:\n{said}");
    // Every core object was checked against a schema; only KEDA's CRD has none bundled (its
    // fields are checked below).
    for line in said.lines().filter(|l| l.starts_with("WARN")) {
        assert!(
            line.contains("kind ScaledObject"),
            "kubernetes-validate: {line}"
        );
    }
    assert_eq!(
        said.lines().filter(|l| l.contains(" passed for ")).count(),
        files.len() - 1,
        "kubernetes-validate:\n{said}"
    );
}

#[test]
fn the_deployment_runs_the_shared_store_probes_its_routes_and_fits_the_stop_budget() {
    let objects = kube_objects();
    let pod = &objects["Deployment"]["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let args: Vec<&str> = container["args"]
        .as_vec()
        .expect("args")
        .iter()
        .filter_map(Yaml::as_str)
        .collect();
    assert_eq!(args[0], "serve");
    assert!(
        args.windows(2).any(|w| w == ["--store", "nats"]),
        "--store nats: {args:?}"
    );
    assert_eq!(
        container["livenessProbe"]["httpGet"]["path"].as_str(),
        Some("/healthz")
    );
    assert_eq!(
        container["readinessProbe"]["httpGet"]["path"].as_str(),
        Some("/readyz")
    );
    for kind in ["requests", "limits"] {
        assert!(
            !container["resources"][kind]["memory"].is_badvalue(),
            "resources.{kind}.memory"
        );
    }
    let pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
        .as_i64()
        .expect("a preStop sleep") as u64;
    let grace = pod["terminationGracePeriodSeconds"]
        .as_i64()
        .expect("terminationGracePeriodSeconds") as u64;
    assert!(
        grace >= pre_stop + stop_budget_secs() + 2,
        "grace {grace} s covers the preStop {pre_stop} s and the {} s stop budget",
        stop_budget_secs()
    );
    // Secrets by reference only.
    let env = container["env"].as_vec().expect("env");
    assert!(
        env.iter()
            .any(|e| e["name"].as_str() == Some("DOTA_OPENDOTA_API_KEY")
                && e["valueFrom"]["secretKeyRef"]["name"].as_str()
                    == Some("dota-orchestrator-secrets"))
    );
    assert!(!objects.contains_key("Secret"), "no secret values in git");
    // The ConfigMap's TOML is a valid settings file for this service.
    let toml_text = objects["ConfigMap"]["data"]["dota-orchestrator.toml"]
        .as_str()
        .expect("TOML in the ConfigMap");
    let settings: toml::Table = toml::from_str(toml_text).expect("ConfigMap TOML parses");
    assert_eq!(settings["store"].as_str(), Some("nats"));
    let example = std::fs::read_to_string(common::repo_path("dota-orchestrator.example.toml"))
        .expect("example TOML");
    for key in settings.keys() {
        assert!(
            example.contains(&format!("{key} =")),
            "`{key}` is a setting of dota-orchestrator.example.toml"
        );
    }
    let pdb = &objects["PodDisruptionBudget"]["spec"];
    assert_eq!(pdb["minAvailable"].as_i64(), Some(1));
}

/// The `nats-jetstream` trigger of the ScaledObject: (account, stream, consumer, lagThreshold,
/// activationLagThreshold).
pub(crate) fn keda_jetstream_trigger() -> (String, String, String, u64, u64) {
    let scaled = kube_yaml("scaledobject.yaml");
    assert_eq!(scaled["apiVersion"].as_str(), Some("keda.sh/v1alpha1"));
    assert_eq!(scaled["kind"].as_str(), Some("ScaledObject"));
    let trigger = scaled["spec"]["triggers"]
        .as_vec()
        .expect("triggers")
        .iter()
        .find(|t| t["type"].as_str() == Some("nats-jetstream"))
        .expect("a nats-jetstream trigger")
        .clone();
    let meta = &trigger["metadata"];
    let text = |key: &str| {
        meta[key]
            .as_str()
            .unwrap_or_else(|| panic!("trigger metadata {key} is a string"))
            .to_string()
    };
    let number = |key: &str| {
        text(key)
            .parse::<u64>()
            .unwrap_or_else(|e| panic!("{key}: {e}"))
    };
    assert!(text("natsServerMonitoringEndpoint").ends_with(":8222"));
    (
        text("account"),
        text("stream"),
        text("consumer"),
        number("lagThreshold"),
        number("activationLagThreshold"),
    )
}

#[test]
fn the_scaled_object_names_the_real_queue_and_scales_within_the_availability_bounds() {
    let (account, stream, consumer, lag, activation) = keda_jetstream_trigger();
    let queue = QueueNames::shared();
    assert_eq!(account, "$G", "no accounts are configured");
    assert_eq!(stream, JOBS_STREAM);
    assert_eq!(stream, queue.stream());
    assert_eq!(
        consumer,
        queue.consumer(Priority::Bulk, ResourceKind::Player),
        "the consumer holding an import's backlog"
    );
    assert!(activation < lag);
    let objects = kube_objects();
    let spec = &objects["ScaledObject"]["spec"];
    assert_eq!(
        spec["scaleTargetRef"]["name"].as_str(),
        objects["Deployment"]["metadata"]["name"].as_str()
    );
    let min = spec["minReplicaCount"].as_i64().expect("minReplicaCount");
    let max = spec["maxReplicaCount"].as_i64().expect("maxReplicaCount");
    assert!(min >= 2 && max >= min, "{min}..{max}");
    // The read-load trigger queries a metric the service exports.
    for trigger in spec["triggers"].as_vec().expect("triggers") {
        if let Some(query) = trigger["metadata"]["query"].as_str() {
            let source =
                std::fs::read_to_string(common::repo_path("src/metrics.rs")).expect("metrics.rs");
            for name in metric_names(query) {
                assert!(
                    source.contains(&format!("\"{name}\"")),
                    "{name} is defined in src/metrics.rs"
                );
            }
        }
    }
}

//! Keeps `dashboards/dota-orchestrator.json` honest against the service: every metric and
//! label a panel queries is one the running app exports, every metric defined in
//! `src/metrics.rs` is on the dashboard, and the exported text passes `promtool check metrics`.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::{Command, Stdio};

use common::fixtures::ten_players;
use common::{Fixtures, TestApp, spawn_app};
use serde_json::Value;

const DASHBOARD: &str = "dashboards/dota-orchestrator.json";
/// What every panel's and every target's datasource uid must be.
const DATASOURCE_VAR: &str = "${datasource}";
/// Queries of Prometheus's own alert series, which the "Alerts" row shows: their labels are
/// the rules' (`dashboards/alerts.yml`, held to /metrics by tests/it/alerts.rs), not /metrics'.
pub(crate) const ALERTS_SERIES: &str = "ALERTS{";
/// Labels Prometheus adds at scrape time (`instance`, `job`) or that histograms export (`le`).
pub(crate) const SCRAPE_LABELS: &[&str] = &["instance", "job", "le"];
pub(crate) const HISTOGRAM_SUFFIXES: &[&str] = &["_bucket", "_sum", "_count"];

/// One scrape of `/metrics`: family types from `# TYPE`, and every label name seen per
/// sample name.
pub(crate) struct Exposition {
    pub(crate) text: String,
    types: BTreeMap<String, String>,
    samples: BTreeMap<String, BTreeSet<String>>,
}

impl Exposition {
    fn parse(text: String) -> Self {
        let mut types = BTreeMap::new();
        let mut samples: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let mut parts = rest.split_whitespace();
                if let (Some(name), Some(kind)) = (parts.next(), parts.next()) {
                    types.insert(name.to_string(), kind.to_string());
                }
            } else if !line.starts_with('#') {
                let (name, labels) = parse_sample(line);
                samples.entry(name).or_default().extend(labels);
            }
        }
        Self {
            text,
            types,
            samples,
        }
    }

    /// The family a queried name belongs to, if exported: the name itself (sample or
    /// `# TYPE`), or a histogram's `_bucket`/`_sum`/`_count` series.
    pub(crate) fn family_of<'a>(&self, name: &'a str) -> Option<&'a str> {
        if self.samples.contains_key(name) || self.types.contains_key(name) {
            return Some(name);
        }
        HISTOGRAM_SUFFIXES
            .iter()
            .filter_map(|s| name.strip_suffix(s))
            .find(|base| self.types.get(*base).map(String::as_str) == Some("histogram"))
    }

    /// Label names carried by `name`'s samples (for a histogram family, by its series).
    pub(crate) fn labels_of(&self, name: &str) -> BTreeSet<String> {
        let mut labels = self.samples.get(name).cloned().unwrap_or_default();
        for suffix in HISTOGRAM_SUFFIXES {
            if let Some(l) = self.samples.get(&format!("{name}{suffix}")) {
                labels.extend(l.iter().cloned());
            }
        }
        labels
    }
}

/// Splits `name{a="x",b="y"} 1` into the name and its label names.
fn parse_sample(line: &str) -> (String, Vec<String>) {
    let name_end = line.find(['{', ' ']).unwrap_or(line.len());
    let labels = line[name_end..]
        .strip_prefix('{')
        .map(parse_labels)
        .unwrap_or_default();
    (line[..name_end].to_string(), labels)
}

/// Label names of `a="x",b=~"y"}…` (a sample's labels or a PromQL selector's matchers, the
/// opening brace already consumed). Values may hold braces and commas (route templates), so
/// they are read as quoted strings.
fn parse_labels(mut rest: &str) -> Vec<String> {
    let mut labels = Vec::new();
    while let Some(eq) = rest.find('=') {
        let name = rest[..eq]
            .trim_start_matches(',')
            .trim()
            .trim_end_matches('!');
        labels.push(name.trim().to_string());
        let value = rest[eq + 1..]
            .trim_start_matches('~')
            .strip_prefix('"')
            .expect("quoted label value");
        let mut escaped = false;
        let close = value
            .char_indices()
            .find(|&(_, c)| {
                let end = c == '"' && !escaped;
                escaped = c == '\\' && !escaped;
                end
            })
            .map(|(i, _)| i)
            .expect("closed label value");
        rest = value[close + 1..].trim_start();
        if rest.starts_with('}') {
            break;
        }
    }
    labels
}

/// Every `dota_…` identifier in a PromQL expression.
pub(crate) fn metric_names(expr: &str) -> BTreeSet<String> {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut names = BTreeSet::new();
    let mut from = 0;
    while let Some(at) = expr[from..].find("dota_").map(|i| from + i) {
        let end = expr[at..]
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            .map_or(expr.len(), |i| at + i);
        if !expr[..at].ends_with(ident) {
            names.insert(expr[at..end].to_string());
        }
        from = end;
    }
    names
}

/// Label names an expression groups by (`by (a, b)`) or matches on (`{a="x"}`).
pub(crate) fn label_names(expr: &str) -> BTreeSet<String> {
    let mut labels = BTreeSet::new();
    for (i, _) in expr.match_indices("by (") {
        let list = &expr[i + 4..];
        let list = &list[..list.find(')').expect("closed by ()")];
        labels.extend(
            list.split(',')
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_string),
        );
    }
    // A selector's brace follows a metric name; braces inside label values do not.
    for (i, _) in expr.match_indices('{') {
        if expr[..i].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
            labels.extend(parse_labels(&expr[i + 1..]));
        }
    }
    labels
}

pub(crate) fn load_dashboard() -> Value {
    let text = std::fs::read_to_string(common::repo_path(DASHBOARD)).expect("dashboard file");
    serde_json::from_str(&text).expect("dashboard is JSON")
}

/// Every panel, rows' nested panels included.
fn all_panels(dashboard: &Value) -> Vec<&Value> {
    fn walk<'a>(panels: &'a Value, out: &mut Vec<&'a Value>) {
        for p in panels.as_array().into_iter().flatten() {
            out.push(p);
            walk(&p["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

/// `(panel title, expr)` for every query on the dashboard.
pub(crate) fn all_exprs(dashboard: &Value) -> Vec<(String, String)> {
    all_panels(dashboard)
        .into_iter()
        .flat_map(|p| {
            let title = p["title"].as_str().unwrap_or("?").to_string();
            p["targets"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(move |t| Some((title.clone(), t["expr"].as_str()?.to_string())))
        })
        .collect()
}

/// Starts the app and does real work so every metric family is exported: a match with ten
/// players (one upstream 500 on the way, so a retry), an unknown match that fails with an
/// upstream 404, cache hits, and the queue status route (queue and budget gauges).
pub(crate) async fn scrape_after_real_work() -> (TestApp, Exposition) {
    let fx = Fixtures::new();
    fx.match_with_players(801, &ten_players(8100));
    let t = spawn_app(fx).await;
    t.fault("/opendota/matches/801", 500, Some(1), None).await;
    assert_eq!(t.post("/api/matches/801").await.status(), 202);
    assert_eq!(t.post("/api/matches/999").await.status(), 202);
    t.get_when_ready("/api/matches/801").await;
    for p in 8100..8110 {
        t.get_when_ready(&format!("/api/players/{p}/data")).await;
    }
    t.wait_status("/api/matches/999", 404).await;
    assert_eq!(t.get("/api/queue/status").await.status(), 200);
    let resp = t.get("/metrics").await;
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.expect("metrics body");
    (t, Exposition::parse(text))
}

#[actix_rt::test]
async fn every_dashboard_query_uses_exported_metrics_and_labels() {
    let dashboard = load_dashboard();
    let (t, exposition) = scrape_after_real_work().await;

    let mut problems = Vec::new();
    let exprs = all_exprs(&dashboard);
    assert!(!exprs.is_empty(), "the dashboard has queries");
    for (title, expr) in exprs.iter().filter(|(_, e)| !e.contains(ALERTS_SERIES)) {
        let names = metric_names(expr);
        if names.is_empty() {
            problems.push(format!("{title}: `{expr}` queries no dota_ metric"));
        }
        let mut labels_available: BTreeSet<String> =
            SCRAPE_LABELS.iter().map(|l| l.to_string()).collect();
        for name in &names {
            match exposition.family_of(name) {
                Some(family) => labels_available.extend(exposition.labels_of(family)),
                None => problems.push(format!("{title}: `{name}` is not in /metrics")),
            }
        }
        for label in label_names(expr).difference(&labels_available) {
            problems.push(format!("{title}: label `{label}` is not on {names:?}"));
        }
    }
    assert!(
        problems.is_empty(),
        "dashboard queries that /metrics cannot answer:\n{}\n\n/metrics:\n{}",
        problems.join("\n"),
        exposition.text
    );
    t.shutdown().await;
}

/// Runs `promtool ARGS` with `stdin`, returning its exit success and everything it printed;
/// `None` (test skipped) when promtool is missing outside CI.
pub(crate) fn promtool(args: &[&str], stdin: &str) -> Option<(bool, String)> {
    let child = Command::new("promtool")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            assert!(
                std::env::var_os("CI").is_none(),
                "promtool is not on PATH; install the Debian package `prometheus` \
                 (scripts/install-deps.sh does with DOTA_WITH_TEST_DEPS=1)"
            );
            // Straight to stderr: the test harness captures eprintln! of passing tests.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: promtool is not on PATH (apt-get install prometheus to run this check)"
            );
            return None;
        }
        Err(e) => panic!("running promtool: {e}"),
    };
    // Dropping stdin after the write closes it, so promtool sees the end of input.
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool finishes");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some((out.status.success(), said))
}

#[actix_rt::test]
async fn exported_metrics_pass_promtool_check() {
    let (t, exposition) = scrape_after_real_work().await;
    t.shutdown().await;
    let Some((ok, said)) = promtool(&["check", "metrics"], &exposition.text) else {
        return;
    };
    // Lint findings (missing HELP, counters without _total, ...) are printed, exit non-zero.
    assert!(
        ok && said.trim().is_empty(),
        "promtool check metrics:\n{said}\n/metrics:\n{}",
        exposition.text
    );
}

#[test]
fn dashboard_queries_are_valid_promql() {
    // promtool parses PromQL in rule files; Grafana's range variables get sample values.
    let rules: String = all_exprs(&load_dashboard())
        .iter()
        .enumerate()
        .map(|(i, (_, expr))| {
            let expr = expr
                .replace("$__rate_interval", "1m")
                .replace("$__range", "1h");
            format!(
                "      - record: dashboard:query_{i}\n        expr: {}\n",
                serde_json::to_string(&expr).expect("JSON string is YAML")
            )
        })
        .collect();
    let file = tempfile::NamedTempFile::new().expect("temp rules file");
    std::fs::write(
        file.path(),
        format!("groups:\n  - name: dashboard\n    rules:\n{rules}"),
    )
    .expect("write rules");
    let path = file.path().to_str().expect("UTF-8 temp path");
    let Some((ok, said)) = promtool(&["check", "rules", path], "") else {
        return;
    };
    assert!(ok, "promtool check rules:\n{said}\nrules:\n{rules}");
}

#[test]
fn every_defined_metric_is_on_the_dashboard() {
    let source = std::fs::read_to_string(common::repo_path("src/metrics.rs")).expect("metrics.rs");
    let defined: BTreeSet<String> = source
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub const "))
        .filter(|l| l.contains(": &str = \"dota_"))
        .filter_map(|l| l.split('"').nth(1))
        .map(str::to_string)
        .collect();
    assert!(defined.len() >= 10, "parsed metric names: {defined:?}");

    let queried: BTreeSet<String> = all_exprs(&load_dashboard())
        .iter()
        .flat_map(|(_, expr)| metric_names(expr))
        .flat_map(|name| {
            let family = HISTOGRAM_SUFFIXES
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .map(str::to_string);
            std::iter::once(name).chain(family)
        })
        .collect();
    let missing: Vec<_> = defined.difference(&queried).collect();
    assert!(
        missing.is_empty(),
        "metrics defined in src/metrics.rs that no dashboard query shows: {missing:?}"
    );
}

#[test]
fn dashboard_is_importable_and_every_panel_uses_the_datasource_variable() {
    let dashboard = load_dashboard();
    assert!(dashboard["schemaVersion"].as_u64().unwrap_or(0) >= 36);
    assert!(dashboard["uid"].is_string() && dashboard["title"].is_string());
    let vars = dashboard["templating"]["list"]
        .as_array()
        .expect("variables");
    assert!(
        vars.iter().any(|v| v["name"] == "datasource"
            && v["type"] == "datasource"
            && v["query"] == "prometheus"),
        "a Prometheus datasource variable named `datasource`: {vars:?}"
    );

    let panels = all_panels(&dashboard);
    let data_panels: Vec<_> = panels.iter().filter(|p| p["type"] != "row").collect();
    assert!(data_panels.len() >= 10, "{} data panels", data_panels.len());
    let mut ids = BTreeSet::new();
    for p in &panels {
        let title = &p["title"];
        assert!(
            ids.insert(p["id"].as_u64()),
            "duplicate panel id in {title}"
        );
        assert!(
            p["gridPos"]["w"].as_u64().is_some(),
            "{title} has a gridPos"
        );
    }
    for p in data_panels {
        let title = &p["title"];
        assert_eq!(
            p["datasource"]["uid"], DATASOURCE_VAR,
            "{title} uses the variable"
        );
        let targets = p["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title} has a query");
        for target in targets {
            assert_eq!(
                target["datasource"]["uid"], DATASOURCE_VAR,
                "{title}'s query uses the variable"
            );
        }
    }
}

#[test]
fn promql_helpers_find_names_and_labels() {
    let expr = r#"histogram_quantile(0.5, sum by (service, le) (rate(dota_x_seconds_bucket{route="/a/{id}",status=~"5.."}[$__rate_interval]))) / my_dota_y"#;
    assert_eq!(
        metric_names(expr),
        BTreeSet::from(["dota_x_seconds_bucket".to_string()])
    );
    assert_eq!(
        label_names(expr),
        BTreeSet::from(["le", "route", "service", "status"].map(String::from))
    );
    assert_eq!(
        label_names(r#"sum by (kind) (rate(dota_a{result!="hit"}[5m]))"#),
        BTreeSet::from(["kind", "result"].map(String::from))
    );
    let (name, labels) = parse_sample(r#"dota_h_count{route="/api/{id},x",method="GET"} 3"#);
    assert_eq!(name, "dota_h_count");
    assert_eq!(labels, ["route", "method"]);
}

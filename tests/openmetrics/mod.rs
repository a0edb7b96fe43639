//! The OpenMetrics parser of Python's `prometheus-client`, run on a scrape
//! of `/metrics`: the tests that check figures read them from what a real
//! parser made of the text, never from the text itself.
//!
//! The parser runs as a `python3` subprocess (or `$FANOUT_PYTHON`, which
//! `.ci/run` points at a virtualenv holding the package). When it is
//! missing a test fails under CI (`CI` set); elsewhere `python()` prints a
//! note and answers `None`, so that a developer without the package can
//! still run the suite.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

/// Parses stdin with the OpenMetrics parser (the format `/metrics` declares)
/// and prints `{"types": {family: type}, "samples": {name: {labels: value}}}`,
/// labels written `k=v,k=v` in name order (`""` for none).
const PARSE: &str = r#"
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
types, samples = {}, {}
for family in text_string_to_metric_families(sys.stdin.read()):
    types[family.name] = family.type
    for sample in family.samples:
        labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
        samples.setdefault(sample.name, {})[labels] = sample.value
json.dump({"types": types, "samples": samples}, sys.stdout)
"#;

/// The Python that has `prometheus_client`, or `None` (outside CI) when
/// there is none.
pub fn python() -> Option<String> {
    let python = std::env::var("FANOUT_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let probe = Command::new(&python).args(["-c", "import prometheus_client.openmetrics.parser"]).output();
    let missing = match probe {
        Ok(output) if output.status.success() => return Some(python),
        Ok(output) => String::from_utf8_lossy(&output.stderr).lines().last().unwrap_or_default().to_owned(),
        Err(e) => format!("cannot run {python}: {e}"),
    };
    let hint = "install it with `python3 -m pip install 'prometheus-client>=0.20'`, or set FANOUT_PYTHON \
                to a Python that has it (.ci/run does both)";
    if std::env::var_os("CI").is_some() {
        panic!("the Prometheus parser is needed to check /metrics ({missing}); {hint}");
    }
    eprintln!("note: skipping the /metrics parser check: {missing}; {hint}");
    None
}

/// A scrape as the parser read it.
pub struct Parsed {
    pub types: BTreeMap<String, String>,
    pub samples: BTreeMap<String, BTreeMap<String, f64>>,
}

impl Parsed {
    /// The value of sample `name` with `labels` (`k=v,...`, `""` for none).
    pub fn value(&self, name: &str, labels: &str) -> f64 {
        *self
            .samples
            .get(name)
            .and_then(|by_labels| by_labels.get(labels))
            .unwrap_or_else(|| panic!("no sample {name}{{{labels}}} in {:?}", self.samples.get(name)))
    }

    /// Every sample of `name`, by labels.
    pub fn family(&self, name: &str) -> &BTreeMap<String, f64> {
        self.samples.get(name).unwrap_or_else(|| panic!("no samples named {name}"))
    }
}

pub fn parse(python: &str, scrape: &str) -> Parsed {
    let mut child = Command::new(python)
        .args(["-c", PARSE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the parser");
    child.stdin.take().expect("stdin").write_all(scrape.as_bytes()).expect("feed the parser");
    let output = child.wait_with_output().expect("the parser's output");
    assert!(
        output.status.success(),
        "the OpenMetrics parser rejected the scrape:\n{}\n--- scrape ---\n{scrape}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: Value = serde_json::from_slice(&output.stdout).expect("the parser prints JSON");
    let types = json["types"]
        .as_object()
        .expect("types")
        .iter()
        .map(|(family, kind)| (family.clone(), kind.as_str().expect("a type name").to_owned()))
        .collect();
    let samples = json["samples"]
        .as_object()
        .expect("samples")
        .iter()
        .map(|(name, by_labels)| {
            let by_labels = by_labels.as_object().expect("samples by labels");
            (name.clone(), by_labels.iter().map(|(l, v)| (l.clone(), v.as_f64().expect("a number"))).collect())
        })
        .collect();
    Parsed { types, samples }
}

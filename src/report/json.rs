//! The run record as pretty JSON: the `--json` report and the file under `runs/`.

use super::Exporter;
use crate::record::RunRecord;

pub struct Json;

impl Exporter for Json {
    fn render(&self, run: &RunRecord) -> String {
        // Non-finite floats (an infinite relative error) become null rather than invalid JSON.
        let mut text = serde_json::to_string_pretty(run)
            .unwrap_or_else(|err| format!("{{\"error\": \"cannot encode run record: {err}\"}}"));
        text.push('\n');
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture;

    #[test]
    fn snapshot() {
        insta::assert_snapshot!(Json.render(&fixture::run()));
    }

    #[test]
    fn round_trips() {
        let run = fixture::run();
        let parsed: serde_json::Value = serde_json::from_str(&Json.render(&run)).unwrap();
        assert_eq!(parsed["verdict"], "fail");
        assert_eq!(parsed["results"][1]["verdict"], "regressed");
        assert_eq!(parsed["results"][7]["max_rel_err"], serde_json::Value::Null);
    }
}

//! `-o json` and `-o yaml`.

use serde::Serialize;

use crate::cli::Output;

pub fn object<T: Serialize>(o: &T, output: Option<Output>) -> Result<(), String> {
    let text = match output {
        Some(Output::Yaml) => serde_yaml::to_string(o).map_err(|e| e.to_string())?,
        _ => serde_json::to_string_pretty(o).map_err(|e| e.to_string())? + "\n",
    };
    print!("{text}");
    Ok(())
}

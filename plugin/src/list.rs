//! `list`: the columns of `kubectl get dbgs`.

use debugsession_operator::api::DebugSession;
use kube::Api;
use kube::api::ListParams;

use crate::cli::Output;
use crate::client::Kube;
use crate::explain::{self, Doing};
use crate::{print, table};

pub async fn run(k: &Kube, all: bool, output: Option<Output>) -> Result<(), String> {
    let api: Api<DebugSession> = if all {
        Api::all(k.client.clone())
    } else {
        Api::namespaced(k.client.clone(), &k.namespace)
    };
    let list = api
        .list(&ListParams::default())
        .await
        .map_err(|e| explain::api(&e, Doing::List))?;
    match output {
        Some(Output::Json | Output::Yaml) => print::object(&list, output),
        Some(Output::Name) => {
            for s in &list.items {
                println!(
                    "debugsession.debugsession.dev/{}",
                    s.metadata.name.as_deref().unwrap_or_default()
                );
            }
            Ok(())
        }
        _ if list.items.is_empty() => {
            if all {
                eprintln!("No resources found");
            } else {
                eprintln!("No resources found in {} namespace.", k.namespace);
            }
            Ok(())
        }
        _ => {
            let wide = output == Some(Output::Wide);
            print!(
                "{}",
                table::sessions(&list.items, all, wide, jiff::Timestamp::now())
            );
            Ok(())
        }
    }
}

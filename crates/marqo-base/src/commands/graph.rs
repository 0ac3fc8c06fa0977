//! `marqo-base tree`, `why` and `diff`: the work is `ops::graph` and `ops::diff`. With
//! `--format json`, one document on stdout (schemas in `docs/json/`).

use std::process::ExitCode;

use ops::diff::Change;
use ops::graph::{Ecosystem, NodeId};
use serde_json::{json, Value};

use crate::cli::{DiffArgs, Format, TreeArgs, WhyArgs};
use crate::diagnostics::CliError;
use crate::printer::Printer;

fn package(id: &NodeId) -> Value {
    json!({ "ecosystem": id.0.name(), "name": id.1 })
}

pub fn exec_tree(args: TreeArgs, printer: &Printer, format: Format) -> Result<ExitCode, CliError> {
    let graphs = ops::graph::graph(&args.graph.manifest, args.graph.lock.as_deref(), &args.graph.platforms)?;
    if format == Format::Json {
        let platforms: Vec<Value> = graphs
            .iter()
            .map(|g| {
                let roots: Vec<Value> = g
                    .roots
                    .iter()
                    .map(|r| json!({ "ecosystem": r.node.0.name(), "name": r.node.1, "origin": r.origin }))
                    .collect();
                let packages: Vec<Value> = g
                    .nodes
                    .iter()
                    .map(|(id, n)| {
                        json!({
                            "ecosystem": id.0.name(),
                            "name": id.1,
                            "version": n.version,
                            "file": n.file,
                            "dependencies": n.dependencies.iter().map(package).collect::<Vec<_>>(),
                        })
                    })
                    .collect();
                json!({ "platform": g.platform.to_string(), "roots": roots, "packages": packages })
            })
            .collect();
        printer.json(json!({ "schema": "marqo-base.tree/1", "platforms": platforms }));
        return Ok(ExitCode::SUCCESS);
    }
    for (i, g) in graphs.iter().enumerate() {
        if i > 0 {
            printer.out("");
        }
        printer.out_text(&g.tree(args.invert.as_deref(), args.depth)?);
    }
    Ok(ExitCode::SUCCESS)
}

pub fn exec_why(args: WhyArgs, printer: &Printer, format: Format) -> Result<ExitCode, CliError> {
    let graphs = ops::graph::graph(&args.graph.manifest, args.graph.lock.as_deref(), &args.graph.platforms)?;
    let report = ops::graph::why(&graphs, &args.name)?;
    if format == Format::Json {
        let platforms: Vec<Value> = report
            .iter()
            .map(|w| {
                let paths: Vec<Value> = w
                    .paths
                    .iter()
                    .map(|(origin, steps)| {
                        let steps: Vec<Value> = steps
                            .iter()
                            .map(|((eco, name), version)| {
                                json!({ "ecosystem": Ecosystem::name(*eco), "name": name, "version": version })
                            })
                            .collect();
                        json!({ "origin": origin, "packages": steps })
                    })
                    .collect();
                json!({
                    "platform": w.platform.to_string(),
                    "locked": w.locked,
                    "path_count": w.count,
                    "paths": paths,
                    "absent_because": w.reasons,
                })
            })
            .collect();
        printer.json(json!({ "schema": "marqo-base.why/1", "name": args.name, "platforms": platforms }));
        return Ok(ExitCode::SUCCESS);
    }
    printer.out_text(&ops::graph::render_why(&report));
    Ok(ExitCode::SUCCESS)
}

pub fn exec_diff(args: DiffArgs, printer: &Printer, format: Format) -> Result<ExitCode, CliError> {
    let diffs = ops::diff::diff(&args.manifest, &args.old, args.new.as_deref())?;
    if format == Format::Json {
        let platforms: Vec<Value> = diffs
            .iter()
            .map(|d| {
                let packages: Vec<Value> = d
                    .packages
                    .iter()
                    .map(|((eco, name), change)| match change {
                        Change::Added { version } => {
                            json!({ "ecosystem": eco, "name": name, "change": "added", "to": version })
                        }
                        Change::Removed { version } => {
                            json!({ "ecosystem": eco, "name": name, "change": "removed", "from": version })
                        }
                        Change::Changed { from, to } => {
                            json!({ "ecosystem": eco, "name": name, "change": "changed", "from": from, "to": to })
                        }
                    })
                    .collect();
                json!({
                    "platform": d.platform.to_string(),
                    "packages": packages,
                    "layers": { "total": d.layers, "changed": d.changed_layers },
                })
            })
            .collect();
        printer.json(json!({ "schema": "marqo-base.diff/1", "platforms": platforms }));
        return Ok(ExitCode::SUCCESS);
    }
    printer.out_text(&ops::diff::render(&diffs));
    Ok(ExitCode::SUCCESS)
}

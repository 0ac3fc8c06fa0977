//! `marqo-base tree`, `why` and `diff`: the work is `ops::graph` and `ops::diff`.

use std::process::ExitCode;

use crate::cli::{DiffArgs, TreeArgs, WhyArgs};
use crate::diagnostics::CliError;

pub fn exec_tree(args: TreeArgs) -> Result<ExitCode, CliError> {
    let graphs = ops::graph::graph(&args.graph.manifest, args.graph.lock.as_deref(), &args.graph.platforms)?;
    for (i, g) in graphs.iter().enumerate() {
        if i > 0 {
            println!();
        }
        print!("{}", g.tree(args.invert.as_deref(), args.depth)?);
    }
    Ok(ExitCode::SUCCESS)
}

pub fn exec_why(args: WhyArgs) -> Result<ExitCode, CliError> {
    let graphs = ops::graph::graph(&args.graph.manifest, args.graph.lock.as_deref(), &args.graph.platforms)?;
    print!("{}", ops::graph::why(&graphs, &args.name)?);
    Ok(ExitCode::SUCCESS)
}

pub fn exec_diff(args: DiffArgs) -> Result<ExitCode, CliError> {
    let diffs = ops::diff::diff(&args.manifest, &args.old, args.new.as_deref())?;
    print!("{}", ops::diff::render(&diffs));
    Ok(ExitCode::SUCCESS)
}

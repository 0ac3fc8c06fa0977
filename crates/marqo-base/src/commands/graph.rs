//! `marqo-base tree` and `why`: the work is `ops::graph`.

use std::process::ExitCode;

use crate::cli::{TreeArgs, WhyArgs};
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

//! `grayscope check-config FILE`.

use std::path::Path;
use std::process::ExitCode;

/// Validates `file`; prints what it configures, or fails with why not.
pub fn main(file: &Path) -> anyhow::Result<ExitCode> {
    let (config, mining) = crate::load_config(file)?;
    #[allow(clippy::print_stdout)]
    {
        println!("{}: ok", file.display());
        println!("  data_dir  {}", config.data_dir.display());
        println!("  otlp-grpc {}", config.otlp.grpc_addr);
        println!("  otlp-http {}", config.otlp.http_addr);
        println!("  api       {}", config.api.addr);
        let rules = mining.rules().names();
        if rules.is_empty() {
            println!("  log_rules none");
        } else {
            println!("  log_rules {}", rules.join(", "));
        }
    }
    Ok(ExitCode::SUCCESS)
}

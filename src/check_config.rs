//! `grayscope check-config FILE`.

use std::path::Path;
use std::process::ExitCode;

use grayscope_core::Config;

/// Validates `file`; prints what it configures, or fails with why not.
pub fn main(file: &Path) -> anyhow::Result<ExitCode> {
    let config = Config::load(file)?;
    #[allow(clippy::print_stdout)]
    {
        println!("{}: ok", file.display());
        println!("  data_dir  {}", config.data_dir.display());
        println!("  otlp-grpc {}", config.otlp.grpc_addr);
        println!("  otlp-http {}", config.otlp.http_addr);
        println!("  api       {}", config.api.addr);
    }
    Ok(ExitCode::SUCCESS)
}

//! `grayscope sql "SELECT …"`: runs SQL on a running server and prints the
//! result as a table (or CSV / JSON).

use std::process::ExitCode;

use anyhow::Context as _;
use arrow::ipc::reader::StreamReader;
use clap::{Args, ValueEnum};

/// Arguments of `grayscope sql`.
#[derive(Debug, Args)]
pub struct SqlArgs {
    /// The SQL to run. `-` reads it from standard input.
    sql: String,
    /// The server's HTTP API.
    #[arg(long, env = "GRAYSCOPE_URL", default_value = "http://127.0.0.1:7600")]
    url: String,
    /// How to print the result.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    /// A readable table.
    Table,
    /// CSV with a header line.
    Csv,
    /// The server's JSON document.
    Json,
}

/// Runs the query and prints its result.
pub fn main(args: SqlArgs) -> anyhow::Result<ExitCode> {
    let sql = if args.sql == "-" {
        std::io::read_to_string(std::io::stdin()).context("cannot read SQL from stdin")?
    } else {
        args.sql
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(query(&args.url, &sql, args.format))
}

async fn query(url: &str, sql: &str, format: Format) -> anyhow::Result<ExitCode> {
    let accept = match format {
        Format::Table => "application/vnd.apache.arrow.stream",
        Format::Csv => "text/csv",
        Format::Json => "application/json",
    };
    let endpoint = format!("{}/api/v1/sql", url.trim_end_matches('/'));
    let response = reqwest::Client::new()
        .post(&endpoint)
        .header("content-type", "text/plain; charset=utf-8")
        .header("accept", accept)
        .body(sql.to_owned())
        .send()
        .await
        .with_context(|| format!("cannot reach grayscope at {endpoint}"))?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .context("cannot read the server's answer")?;
    if !status.is_success() {
        let message =
            serde_error(&body).unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
        eprintln!("error: {message}");
        return Ok(ExitCode::from(1));
    }
    let mut out = std::io::stdout().lock();
    match format {
        Format::Table => {
            let reader = StreamReader::try_new(&body[..], None)
                .context("the server's answer is not an Arrow stream")?;
            let batches = reader
                .collect::<Result<Vec<_>, _>>()
                .context("the server's Arrow stream is corrupt")?;
            let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
            let table = arrow::util::pretty::pretty_format_batches(&batches)
                .context("cannot format the result")?;
            use std::io::Write as _;
            writeln!(out, "{table}")?;
            eprintln!("({rows} row{})", if rows == 1 { "" } else { "s" });
        }
        Format::Csv | Format::Json => {
            use std::io::Write as _;
            out.write_all(&body)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn serde_error(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    value.get("error")?.as_str().map(str::to_owned)
}

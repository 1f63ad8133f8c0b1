use clap::Parser;

fn main() -> std::process::ExitCode {
    // `.env` in the working directory, for settings not in the real environment (which wins)
    match dotenvy::from_path(".env") {
        Err(dotenvy::Error::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => eprintln!("warning: .env not read: {e}"),
        Ok(()) => {}
    }
    let cli = ace::cli::Cli::parse();
    match ace::cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        // `ace playbook export x | head` is not an error.
        Err(e)
            if e.chain().any(|c| {
                let kind = c
                    .downcast_ref::<std::io::Error>()
                    .map(std::io::Error::kind)
                    .or_else(|| {
                        c.downcast_ref::<serde_json::Error>()
                            .and_then(serde_json::Error::io_error_kind)
                    });
                kind == Some(std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {}", ace::text::visible(&format!("{e:#}")));
            std::process::ExitCode::FAILURE
        }
    }
}

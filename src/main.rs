use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = ace::cli::Cli::parse();
    match ace::cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        // `ace playbook export x | head` is not an error.
        Err(e)
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = enroll::config::Cli::parse();
    match enroll::commands::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("enroll: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
